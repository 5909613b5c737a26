"""A roadmap's execution logs: order, level filter, cursor pagination."""

from __future__ import annotations

import asyncio
import functools
import operator
import uuid

import httpx
from redis.asyncio import Redis

from roadmap_api.testing import Account, Seeder, queued_tasks, request_body
from roadmap_core import logship
from roadmap_core.contracts import LOGS_QUEUE
from roadmap_core.domain import JobStatus, LogLevel
from roadmap_core.logdetails import (
    RoadmapCancelledDetails,
    RoadmapDeletedDetails,
    RoadmapSubmittedDetails,
    parse_produced,
)


async def test_logs_in_order_with_pagination_and_level(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating)
    levels = [LogLevel.debug, LogLevel.info, LogLevel.warning, LogLevel.error, LogLevel.info]
    events = await seed.logs(job.id, levels)
    url = f"/api/v1/roadmaps/{job.id}/logs"

    everything = (await client.get(url, headers=alice.headers)).json()
    assert [e["message"] for e in everything["items"]] == [e.message for e in events]
    assert everything["next_cursor"] is None

    pages, after = [], None
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        page = (await client.get(url, params=params, headers=alice.headers)).json()
        pages.append([e["event_id"] for e in page["items"]])
        after = page["next_cursor"]
        if after is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert functools.reduce(operator.iadd, pages, []) == [str(e.event_id) for e in events]

    warnings = (await client.get(url, params={"level": "warning"}, headers=alice.headers)).json()
    assert [e["level"] for e in warnings["items"]] == ["warning", "error"]


async def test_logs_errors(client: httpx.AsyncClient, alice: Account, seed: Seeder) -> None:
    job = await seed.job(alice)
    url = f"/api/v1/roadmaps/{job.id}/logs"
    cases: list[tuple[dict[str, str | int], int]] = [
        ({"after": "garbage"}, 400),
        ({"after": "WyJub3QtYS1kYXRlIiwieCJd"}, 400),
        ({"level": "loud"}, 422),
        ({"limit": 501}, 422),
    ]
    for params, status in cases:
        response = await client.get(url, params=params, headers=alice.headers)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.get(f"/api/v1/roadmaps/{uuid.uuid4()}/logs", headers=alice.headers)
    assert response.status_code == 404
    assert (await client.get(url)).status_code == 401


async def test_the_api_logs_its_actions_as_declared_kinds(
    client: httpx.AsyncClient, alice: Account, redis: Redis
) -> None:
    body = request_body()
    submitted = await client.post("/api/v1/roadmaps", json=body, headers=alice.headers)
    job_id = submitted.json()["id"]
    await client.post(f"/api/v1/roadmaps/{job_id}/cancel", headers=alice.headers)
    await client.delete(f"/api/v1/roadmaps/{job_id}", headers=alice.headers)
    assert await asyncio.to_thread(logship.flush, 10)

    events = [
        event
        for task in await queued_tasks(redis, LOGS_QUEUE)
        for event in task.payload["events"]
        if event["job_id"] == job_id
    ]
    details = [parse_produced(e["details"]) for e in events]
    user = alice.id
    assert details == [
        RoadmapSubmittedDetails(user_id=user, review=False),
        RoadmapCancelledDetails(user_id=user),
        RoadmapDeletedDetails(user_id=user, was_active=False),
    ]
    assert [e["category"] for e in events] == ["api"] * 3


async def test_stored_details_are_served_by_kind(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating)
    item = uuid.uuid4()
    llm_call = {
        "kind": "llm_call",
        "model": "m",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": "0.002",
        "outcome": "ok",
        "item_id": str(item),
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
    }
    marker = {"kind": "truncated", "original_kind": "step_finished", "original_bytes": 9000}
    stored = [llm_call, {**marker, "preview": "{"}, {}, {"i": 1, "model": "m"}]
    await seed.logs(job.id, [LogLevel.info] * 4, details=stored)

    page = await client.get(f"/api/v1/roadmaps/{job.id}/logs", headers=alice.headers)
    served = [e["details"] for e in page.json()["items"]]
    assert served[0] == {
        **llm_call,
        "request_id": None,
        "span_id": None,
    }
    assert served[1] == {**marker, "preview": "{", "trace_id": None, "span_id": None}
    assert served[2:] == [
        {"kind": "untyped", "data": {}},
        {"kind": "untyped", "data": {"i": 1, "model": "m"}},
    ]
