"""End to end through the HTTP API: the real API (uvicorn), content worker, logs worker and
the fake LLM as processes on the session's Postgres and Redis.

Submit a roadmap, follow its SSE stream to ``completed`` — dropping the connection
mid-stream and resuming with ``Last-Event-ID`` — read a concept's content, regenerate it,
and see the new version next to the old one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.sentinels import new_password
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

FOLLOW_TIMEOUT_S = 120.0


@dataclass
class Event:
    event: str
    id: str | None
    data: dict[str, Any]


@dataclass
class Stream:
    """What one SSE connection delivered."""

    events: list[Event] = field(default_factory=list)
    comments: int = 0

    @property
    def kinds(self) -> list[str]:
        return [e.event for e in self.events]


async def follow(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    last_event_id: str | None = None,
    stop_after: str | None = None,
) -> Stream:
    """Read the stream until it ends (after a terminal event) or, with ``stop_after``, until
    the first event of that type arrived — then hang up, as a client losing its network."""
    stream = Stream()
    if last_event_id is not None:
        headers = {**headers, "Last-Event-ID": last_event_id}
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                stream.comments += 1
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "event" in fields:
                stream.events.append(
                    Event(fields["event"], fields.get("id"), json.loads(fields.get("data", "{}")))
                )
                if stop_after is not None and fields["event"] == stop_after:
                    break
            fields = {}
    return stream


def entry_order(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


async def wait_for(probe: Any, within_s: float, what: str, *, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(poll_s)
    raise AssertionError(f"timed out after {within_s:.0f}s waiting for {what}")


async def test_submit_follow_read_regenerate(stack: Stack) -> None:
    stack.start(api=True, content_workers=1, logs_worker=True, concurrency=2)
    assert stack.api is not None
    async with httpx.AsyncClient(
        base_url=stack.api.url, timeout=httpx.Timeout(30.0, read=FOLLOW_TIMEOUT_S)
    ) as client:
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        password = new_password()
        stack.capture.secrets.add(password)
        registered = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        assert registered.status_code == 201, registered.text
        token = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        # -- submit ------------------------------------------------------------------
        started = time.monotonic()
        submitted = await client.post("/api/v1/roadmaps", json=small_request(), headers=auth)
        assert submitted.status_code == 202, submitted.text
        accepted = submitted.json()
        job_id = accepted["id"]
        assert submitted.headers["Location"] == accepted["links"]["self"]
        events_url = accepted["links"]["events"]

        # -- follow, hang up mid-stream, resume ----------------------------------------
        first = await asyncio.wait_for(
            follow(client, events_url, auth, stop_after="item"), FOLLOW_TIMEOUT_S
        )
        assert first.kinds[0] == "snapshot", (first.kinds, stack.logs())
        assert first.kinds[-1] == "item", first.kinds
        resumed = await asyncio.wait_for(
            follow(client, events_url, auth, last_event_id=first.events[-1].id),
            FOLLOW_TIMEOUT_S,
        )
        assert "snapshot" not in resumed.kinds, resumed.kinds
        # Items finished after the hang-up come from the stream on resume.
        assert "item" in resumed.kinds, resumed.kinds
        assert resumed.kinds[-1] == "completed", (resumed.kinds, stack.logs())
        assert resumed.events[-1].data["status"] == "completed"

        streamed = first.events[1:] + resumed.events
        ids = [e.id for e in streamed]
        assert all(ids), ids
        assert ids == sorted(ids, key=lambda i: entry_order(str(i))), ids
        assert len(set(ids)) == len(ids), "an event was delivered twice"
        # No gap across the reconnect: every item finished shows up exactly once.
        finished_items = [
            e.data["item_id"]
            for e in streamed
            if e.event == "item" and e.data.get("status") == "succeeded"
        ]
        assert len(finished_items) == len(set(finished_items))

        detail = (await client.get(f"/api/v1/roadmaps/{job_id}", headers=auth)).json()
        assert detail["status"] == "completed", detail
        total = detail["progress"]["total"]
        assert total > 0
        assert detail["progress"]["done"] == total
        assert sorted(finished_items) == sorted(set(finished_items))
        assert len(finished_items) == total, (len(finished_items), total, resumed.kinds)
        assert detail["usage"]["prompt_tokens"] > 0
        concepts = [
            c
            for stage in detail["framework"]["stages"]
            for module in stage["modules"]
            for c in module["concepts"]
        ]
        assert concepts
        assert all(
            item["status"] == "succeeded" for c in concepts for item in c["content"].values()
        )
        print(f"roadmap of {len(concepts)} concepts completed in {time.monotonic() - started:.1f}s")

        # -- read a concept's content --------------------------------------------------
        concept_id = concepts[0]["id"]
        concept_url = f"/api/v1/roadmaps/{job_id}/concepts/{concept_id}"
        concept = (await client.get(concept_url, headers=auth)).json()
        tutorial = concept["content"]["tutorial"]
        assert tutorial["version"] == 1
        first_markdown = tutorial["result"]["body"]["markdown"]
        assert first_markdown.strip()
        assert concept["content"]["quiz"]["result"]["body"]["questions"]
        assert concept["content"]["resources"]["result"]["body"]["resources"]

        # -- regenerate it and see the new version --------------------------------------
        regenerated = await client.post(
            f"{concept_url}/regenerate",
            json={"kinds": ["tutorial"], "instructions": "Shorter, with one worked example."},
            headers=auth,
        )
        assert regenerated.status_code == 202, regenerated.text
        again = await asyncio.wait_for(follow(client, events_url, auth), FOLLOW_TIMEOUT_S)
        assert again.kinds[0] == "snapshot"
        assert again.kinds[-1] == "completed", (again.kinds, stack.logs())

        async def second_version() -> dict[str, Any] | None:
            body = (await client.get(concept_url, headers=auth)).json()
            return body if body["content"]["tutorial"]["version"] == 2 else None

        latest = await wait_for(second_version, 60, "tutorial version 2")
        new_tutorial = latest["content"]["tutorial"]
        assert new_tutorial["versions"] == [1, 2]
        assert new_tutorial["status"] == "succeeded"
        assert new_tutorial["result"]["version"] == 2
        assert new_tutorial["result"]["instructions"] == "Shorter, with one worked example."
        assert latest["content"]["quiz"]["version"] == 1  # only the tutorial was regenerated
        older = (await client.get(concept_url, params={"version": 1}, headers=auth)).json()
        assert older["content"]["tutorial"]["result"]["body"]["markdown"] == first_markdown

        # -- the API's own execution-log events arrive through the logs worker -----------
        async def api_events() -> list[dict[str, Any]]:
            page = (await client.get(f"/api/v1/roadmaps/{job_id}/logs", headers=auth)).json()
            return [e for e in page["items"] if e["category"] == "api"]

        logged = await wait_for(api_events, 30, "the API's execution-log events")
        assert {e["step"] for e in logged} >= {"submitted"}
