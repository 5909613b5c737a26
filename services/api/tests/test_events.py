"""The SSE progress stream: snapshot first, stream entries as events, resume, heartbeats, end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from roadmap_api.testing import Account, Seeder, parse_sse
from roadmap_core.domain import JobStatus
from roadmap_core.progress import ProgressEvent, ProgressType, publish_progress, stream_key
from roadmap_devservers.embedded import EmbeddedRedis

from .conftest import AppFactory, client_for


async def publish(redis: Redis, job_id: uuid.UUID, type_: ProgressType, **data: Any) -> str:
    return await publish_progress(
        redis, job_id, ProgressEvent(type=type_, data=data), maxlen=1000, ttl_s=600
    )


def events_url(job_id: uuid.UUID) -> str:
    return f"/api/v1/roadmaps/{job_id}/events"


async def get_stream(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> httpx.Response:
    return await asyncio.wait_for(client.get(url, headers=headers), timeout=20)


async def stream_while(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    during: Callable[[], Coroutine[Any, Any, None]],
) -> httpx.Response:
    """GET the stream while ``during`` runs (it must end the stream, or the test times out)."""
    task = asyncio.create_task(during())
    try:
        return await asyncio.wait_for(client.get(url, headers=headers), timeout=30)
    finally:
        await task


@pytest.fixture
async def sse_app(app_factory: AppFactory) -> FastAPI:
    return await app_factory(sse_ping_s=0.2, sse_block_ms=200, sse_recheck_s=60)


async def test_snapshot_then_live_events_until_terminal(
    sse_app: FastAPI, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    earlier = await publish(redis, job.id, ProgressType.status, status="generating")
    pool = sse_app.state.services.db.engine.pool
    later_ids: list[str] = []
    held_while_streaming: list[int] = []

    async def worker() -> None:
        await asyncio.sleep(0.7)
        held_while_streaming.append(pool.checkedout())
        later_ids.append(await publish(redis, job.id, ProgressType.item, kind="tutorial"))
        later_ids.append(await publish(redis, job.id, ProgressType.completed, status="completed"))
        # Anything after the terminal event is not sent.
        await publish(redis, job.id, ProgressType.item, kind="quiz")

    async with client_for(sse_app) as client:
        response = await stream_while(client, events_url(job.id), alice.headers, worker)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in parse_sse(response.text) if e.event]
    assert [e.event for e in events] == ["snapshot", "item", "completed"]
    snapshot = events[0].json()
    assert snapshot["status"] == "generating"
    assert snapshot["progress"]["total"] == 3
    assert events[0].id == earlier
    assert [e.id for e in events[1:]] == later_ids
    assert events[1].json() == {"kind": "tutorial"}
    assert held_while_streaming == [0]
    pings = [c for e in parse_sse(response.text) for c in e.comments]
    assert any(c.startswith("ping") for c in pings)


async def test_resume_with_last_event_id(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=1)
    ids = [
        await publish(redis, job.id, ProgressType.status, status="generating"),
        await publish(redis, job.id, ProgressType.item, n=1),
        await publish(redis, job.id, ProgressType.item, n=2),
        await publish(redis, job.id, ProgressType.completed, status="completed"),
    ]
    response = await get_stream(
        client, events_url(job.id), {**alice.headers, "Last-Event-ID": ids[1]}
    )
    events = [e for e in parse_sse(response.text) if e.event]
    assert [(e.event, e.id) for e in events] == [("item", ids[2]), ("completed", ids[3])]


async def test_resume_after_the_stream_was_trimmed_starts_with_a_snapshot(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    first = await publish(redis, job.id, ProgressType.item, n=1)
    await publish(redis, job.id, ProgressType.item, n=2)
    await publish(redis, job.id, ProgressType.item, n=3)
    last = await publish(redis, job.id, ProgressType.completed, status="completed")
    await redis.xtrim(stream_key(job.id), maxlen=2, approximate=False)
    response = await client.get(
        events_url(job.id), headers={**alice.headers, "Last-Event-ID": first}
    )
    events = [e for e in parse_sse(response.text) if e.event]
    assert [e.event for e in events] == ["snapshot", "item", "completed"]
    assert events[-1].id == last


async def test_finished_job_gets_snapshot_and_terminal_event(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    for status, terminal in [
        (JobStatus.completed, "completed"),
        (JobStatus.partial_failure, "completed"),
        (JobStatus.failed, "failed"),
        (JobStatus.cancelled, "cancelled"),
    ]:
        job = await seed.job(alice, status=status)
        response = await get_stream(client, events_url(job.id), alice.headers)
        events = [e for e in parse_sse(response.text) if e.event]
        assert [e.event for e in events] == ["snapshot", terminal]
        assert events[1].json()["status"] == status.value
        assert events[0].id == "0-0"


async def test_idle_stream_notices_a_job_that_ended_silently(
    app_factory: AppFactory, alice: Account, seed: Seeder
) -> None:
    app = await app_factory(sse_block_ms=100, sse_recheck_s=0.3)
    job = await seed.job(alice, status=JobStatus.generating)

    async def worker_dies_after_finishing() -> None:
        await asyncio.sleep(0.5)
        await seed.set_job(job.id, status=JobStatus.failed, error="gave up")

    async with client_for(app) as client:
        response = await stream_while(
            client, events_url(job.id), alice.headers, worker_dies_after_finishing
        )
    events = [e for e in parse_sse(response.text) if e.event]
    assert [e.event for e in events] == ["snapshot", "failed"]
    assert events[1].json() == {"status": "failed", "error": "gave up"}


async def test_stream_errors(
    client: httpx.AsyncClient, alice: Account, bob: Account, seed: Seeder
) -> None:
    job = await seed.job(bob)
    assert (await client.get(events_url(job.id), headers=alice.headers)).status_code == 404
    assert (await client.get(events_url(uuid.uuid4()), headers=alice.headers)).status_code == 404
    assert (await client.get(events_url(job.id))).status_code == 401
    long_id = {"Last-Event-ID": "1" * 65}
    assert (
        await client.get(events_url(job.id), headers={**bob.headers, **long_id})
    ).status_code == 422


async def test_redis_down_at_connect_is_503(
    app_factory: AppFactory, own_redis: EmbeddedRedis, alice: Account, seed: Seeder
) -> None:
    app = await app_factory(redis_url=own_redis.url)
    job = await seed.job(alice, status=JobStatus.generating)
    own_redis.stop()
    async with client_for(app) as client:
        response = await client.get(events_url(job.id), headers=alice.headers)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Retry-After" in response.headers
