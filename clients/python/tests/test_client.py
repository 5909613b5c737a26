"""The client on its own (no server): errors as exceptions, typed events, and the event
stream's follow — resume with Last-Event-ID, the `retry:` hint, 204 at the end."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from roadmap_client import (
    OPERATIONS,
    Conflict,
    NotFound,
    RateLimited,
    RoadmapClient,
    StreamLost,
    ValidationFailed,
)
from roadmap_client.models import CompletedEvent, ItemEvent, LlmCallDetails, UntypedDetails

JOB = uuid.uuid4()
PROGRESS = {"total": 3, "done": 1, "failed": 0, "pending": 2, "cancelled": 0}
ITEM = {
    "item_id": str(uuid.uuid4()),
    "concept_id": str(uuid.uuid4()),
    "concept_key": "joins",
    "kind": "tutorial",
    "status": "succeeded",
    "version": 1,
    "progress": PROGRESS,
}
DONE = {
    "status": "completed",
    "failed_items": [],
    "progress": {**PROGRESS, "done": 3, "pending": 0},
}
SNAPSHOT = Path(__file__).resolve().parents[3] / "services/api/openapi.json"


def sse(event: str, data: object, event_id: str, retry: int | None = None) -> str:
    block = f"event: {event}\ndata: {json.dumps(data)}\nid: {event_id}\n"
    return block + (f"retry: {retry}\n" if retry is not None else "") + "\n"


def client_for(handler: httpx.MockTransport) -> RoadmapClient:
    return RoadmapClient("http://api.test", token="t", transport=handler)


def problem(status: int, **extra: object) -> httpx.Response:
    body = {"type": "about:blank", "title": "x", "status": status, **extra}
    return httpx.Response(status, json=body, headers={"Retry-After": "7"})


def test_every_operation_of_the_document_is_called_by_the_client() -> None:
    document = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    declared = {
        op["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert declared == OPERATIONS


def test_errors_are_typed_exceptions_with_the_problem() -> None:
    answers = {
        "/api/v1/roadmaps": problem(429, quota="active_jobs", limit=5),
        f"/api/v1/roadmaps/{JOB}": problem(404),
        f"/api/v1/roadmaps/{JOB}/cancel": problem(409, status_now="completed"),
        "/api/v1/me": problem(
            422, errors=[{"loc": ["body", "x"], "msg": "Extra inputs", "type": "extra"}]
        ),
    }
    with client_for(httpx.MockTransport(lambda r: answers[r.url.path])) as api:
        with pytest.raises(RateLimited) as limited:
            api.create_roadmap(goal="Learn SQL", level="beginner", weekly_hours=2, weeks=2)
        assert limited.value.retry_after == 7
        assert limited.value.problem.quota == "active_jobs"
        with pytest.raises(NotFound):
            api.get_roadmap(JOB)
        with pytest.raises(Conflict) as conflict:
            api.cancel(JOB)
        assert conflict.value.problem.status_now == "completed"
        with pytest.raises(ValidationFailed) as invalid:
            api.me()
        assert [e.loc for e in invalid.value.problem.errors or []] == [["body", "x"]]


def test_follow_resumes_after_a_drop_and_stops_at_the_terminal_event() -> None:
    seen_ids: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_ids.append(request.headers.get("last-event-id"))
        if len(seen_ids) == 1:  # a snapshot and one item, then the connection drops
            body = sse("snapshot", {"x": 1}, "1-0") + sse("item", ITEM, "2-0", retry=1)
        else:
            body = sse("item", ITEM, "3-0") + sse("completed", DONE, "4-0")
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    with client_for(httpx.MockTransport(handler)) as api:
        events = list(api.events(JOB))
    assert seen_ids == [None, "2-0"]
    assert [(e.type, e.id) for e in events] == [
        ("snapshot", "1-0"), ("item", "2-0"), ("item", "3-0"), ("completed", "4-0"),
    ]  # fmt: skip
    assert events[0].data is None  # not a valid snapshot: kept as raw JSON only
    assert events[0].raw == {"x": 1}
    assert isinstance(events[1].data, ItemEvent)
    assert events[1].data.progress.done == 1
    assert isinstance(events[-1].data, CompletedEvent)
    assert events[-1].is_terminal


def test_follow_ends_on_204_and_gives_up_after_the_allowed_reconnects() -> None:
    with client_for(httpx.MockTransport(lambda r: httpx.Response(204))) as api:
        assert list(api.events(JOB, last_event_id="4-0")) == []

    def empty(request: httpx.Request) -> httpx.Response:
        # Ends at once with only a retry hint, as the server does when Redis fails.
        return httpx.Response(
            200, text=": unavailable\nretry: 1\n\n", headers={"content-type": "text/event-stream"}
        )

    with client_for(httpx.MockTransport(empty)) as api, pytest.raises(StreamLost):
        list(api.events(JOB, reconnects=2))


def test_refused_stream_raises_at_once() -> None:
    with client_for(httpx.MockTransport(lambda r: problem(429))) as api:
        stream: Iterator[object] = api.events(JOB)
        with pytest.raises(RateLimited):
            next(stream)


def test_log_details_are_typed_and_an_unknown_kind_reads_as_untyped() -> None:
    def entry(n: int, details: Mapping[str, object]) -> dict[str, object]:
        return {
            "event_id": str(uuid.UUID(int=n)), "ts": "2026-01-01T00:00:00Z", "level": "info",
            "category": "llm", "step": "curriculum_design", "message": f"m{n}",
            "concept_id": None, "duration_ms": None, "details": details,
        }  # fmt: skip

    llm_call = {
        "kind": "llm_call", "model": "m", "prompt_tokens": 3, "completion_tokens": 4,
        "cost_usd": "0.001", "outcome": "ok", "item_id": None, "request_id": None,
        "trace_id": None, "span_id": None,
    }  # fmt: skip
    future = {"kind": "a_kind_added_later", "anything": [1, 2]}
    page = {"items": [entry(1, llm_call), entry(2, future)], "next_cursor": None}
    with client_for(httpx.MockTransport(lambda r: httpx.Response(200, json=page))) as api:
        first, second = api.logs(JOB).items
    assert isinstance(first.details, LlmCallDetails)
    assert (first.details.prompt_tokens, first.details.cost_usd) == (3, "0.001")
    assert isinstance(second.details, UntypedDetails)
    assert second.details.data == future
