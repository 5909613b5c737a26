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

from roadmap_api.testing import Account, Seeder, parse_sse, problem
from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, JobStep
from roadmap_core.progress import (
    CompletedEvent,
    EventData,
    ItemEvent,
    Progress,
    StatusEvent,
    decode_entry,
    publish_progress,
    publish_progress_events,
    stream_key,
)
from roadmap_devservers.embedded import EmbeddedRedis

from .conftest import AppFactory, client_for

PROGRESS = Progress(total=3, done=1, failed=0, pending=2, cancelled=0)


def item(n: int = 1, kind: ContentKind = ContentKind.tutorial) -> ItemEvent:
    return ItemEvent(
        item_id=uuid.uuid4(),
        concept_id=uuid.uuid4(),
        concept_key=f"concept-{n}",
        kind=kind,
        status=ItemStatus.succeeded,
        version=1,
        progress=PROGRESS,
    )


def completed() -> CompletedEvent:
    return CompletedEvent(status=JobStatus.completed, failed_items=[], progress=PROGRESS)


def status_event(status: JobStatus = JobStatus.generating) -> StatusEvent:
    return StatusEvent(status=status, step=JobStep.content_generation)


async def publish(redis: Redis, job_id: uuid.UUID, data: EventData) -> str:
    return await publish_progress(redis, job_id, data, maxlen=1000, ttl_s=600)


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
    earlier = await publish(redis, job.id, status_event())
    pool = sse_app.state.services.db.engine.pool
    later_ids: list[str] = []
    tutorial = item()
    held_while_streaming: list[int] = []

    async def worker() -> None:
        await asyncio.sleep(0.7)
        held_while_streaming.append(pool.checkedout())
        later_ids.append(await publish(redis, job.id, tutorial))
        later_ids.append(await publish(redis, job.id, completed()))
        # Anything after the terminal event is not sent.
        await publish(redis, job.id, item(2, ContentKind.quiz))

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
    assert events[1].json() == tutorial.model_dump(mode="json")
    assert held_while_streaming == [0]
    pings = [c for e in parse_sse(response.text) for c in e.comments]
    assert any(c.startswith("ping") for c in pings)


async def test_resume_with_last_event_id(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=1)
    ids = [
        await publish(redis, job.id, status_event()),
        await publish(redis, job.id, item(1)),
        await publish(redis, job.id, item(2)),
        await publish(redis, job.id, completed()),
    ]
    response = await get_stream(
        client, events_url(job.id), {**alice.headers, "Last-Event-ID": ids[1]}
    )
    events = [e for e in parse_sse(response.text) if e.event]
    assert [(e.event, e.id) for e in events] == [("item", ids[2]), ("completed", ids[3])]


async def test_events_published_together_stream_in_order_each_with_its_id(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=1)
    first = await publish(redis, job.id, status_event())
    together = await publish_progress_events(
        redis, job.id, [item(1), item(2), completed()], maxlen=1000, ttl_s=600
    )
    assert len(set(together)) == 3
    assert 0 < await redis.ttl(stream_key(job.id)) <= 600
    response = await get_stream(
        client, events_url(job.id), {**alice.headers, "Last-Event-ID": first}
    )
    events = [e for e in parse_sse(response.text) if e.event]
    assert [(e.event, e.id) for e in events] == list(
        zip(["item", "item", "completed"], together, strict=True)
    )


async def test_resume_after_the_stream_was_trimmed_starts_with_a_snapshot(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    first = await publish(redis, job.id, item(1))
    await publish(redis, job.id, item(2))
    await publish(redis, job.id, item(3))
    last = await publish(redis, job.id, completed())
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
        assert events[0].json()["progress"] == events[1].json()["progress"]
        # The id sent with the end of a stream that has no entries, sent back, is the end.
        assert events[1].id not in (None, "0-0")
        again = await get_stream(
            client, events_url(job.id), {**alice.headers, "Last-Event-ID": events[1].id}
        )
        assert again.status_code == 204, again.text


async def test_resuming_at_or_after_the_end_of_a_finished_stream_answers_204(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=1)
    await publish(redis, job.id, item(1))
    end = await publish(redis, job.id, completed())
    ms, _, seq = end.partition("-")
    for resume in (end, f"{ms}-{int(seq) + 1}", f"{int(ms) + 5}-0"):
        response = await get_stream(
            client, events_url(job.id), {**alice.headers, "Last-Event-ID": resume}
        )
        assert response.status_code == 204, (resume, response.text)
        assert response.content == b""


async def test_finished_job_without_its_terminal_entry_replays_and_ends_without_waiting(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    # The worker's terminal publish was lost: what is left is replayed, then the end from
    # the database, at once (SSE_RECHECK_S is 30 s here).
    job = await seed.job(alice, status=JobStatus.failed, concepts=1)
    await seed.set_job(job.id, error="gave up")
    first = await publish(redis, job.id, item(1))
    second = await publish(redis, job.id, item(2))
    response = await get_stream(
        client, events_url(job.id), {**alice.headers, "Last-Event-ID": first}
    )
    events = [e for e in parse_sse(response.text) if e.event]
    assert [(e.event, e.id) for e in events] == [("item", second), ("failed", second)]
    assert events[1].json()["error"] == "gave up"


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
    progress = {"total": 0, "done": 0, "failed": 0, "pending": 0, "cancelled": 0}
    assert events[1].json() == {"status": "failed", "error": "gave up", "progress": progress}


async def test_stream_errors(
    client: httpx.AsyncClient, alice: Account, bob: Account, seed: Seeder
) -> None:
    job = await seed.job(bob)
    assert (await client.get(events_url(job.id), headers=alice.headers)).status_code == 404
    assert (await client.get(events_url(uuid.uuid4()), headers=alice.headers)).status_code == 404
    assert (await client.get(events_url(job.id))).status_code == 401
    for malformed in ("1" * 65, "abc", "1-2-3", "99999999999999999999-0", "17-"):
        body = problem(
            await client.get(
                events_url(job.id), headers={**bob.headers, "Last-Event-ID": malformed}
            ),
            400,
        )
        assert "Last-Event-ID" in body["detail"]


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


async def test_every_status_change_a_request_makes_is_an_event(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    async def stream_of(job_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
        entries = await redis.xrange(stream_key(job_id)) or []
        decoded = [decode_entry(fields) for _, fields in entries if fields is not None]
        return [(e.type.value, e.data.model_dump(mode="json")) for e in decoded]

    roadmaps = "/api/v1/roadmaps"
    approved = await seed.job(alice, status=JobStatus.awaiting_review, concepts=1, review=True)
    revised = await seed.job(alice, status=JobStatus.awaiting_review, concepts=1, review=True)
    cancelled = await seed.job(alice, status=JobStatus.generating, concepts=1)
    deleted = await seed.job(alice, status=JobStatus.generating, concepts=1)
    retried = await seed.job(alice, status=JobStatus.partial_failure, concepts=1)
    await seed.set_items(retried.id, ItemStatus.failed)
    regenerated = await seed.job(
        alice, status=JobStatus.completed, concepts=1, item_status=ItemStatus.succeeded,
        with_results=True,
    )  # fmt: skip
    calls = [
        client.post(
            f"{roadmaps}/{approved.id}/review", json={"approve": True}, headers=alice.headers
        ),
        client.post(
            f"{roadmaps}/{revised.id}/review",
            json={"approve": False, "feedback": "More on interrupts."},
            headers=alice.headers,
        ),
        client.post(f"{roadmaps}/{cancelled.id}/cancel", headers=alice.headers),
        client.delete(f"{roadmaps}/{deleted.id}", headers=alice.headers),
        client.post(f"{roadmaps}/{retried.id}/retry", headers=alice.headers),
        client.post(
            f"{roadmaps}/{regenerated.id}/concepts/{regenerated.concept_ids[0]}/regenerate",
            json={"kinds": ["quiz"]},
            headers=alice.headers,
        ),
    ]
    for call in calls:
        response = await call
        assert response.status_code in (202, 204), response.text

    generating = {"status": "generating", "step": "content_generation"}
    assert await stream_of(approved.id) == [("status", generating)]
    assert await stream_of(revised.id) == [("status", {"status": "queued", "step": "revision"})]
    assert await stream_of(retried.id) == [("status", generating)]
    assert await stream_of(regenerated.id) == [("status", generating)]
    for job in (cancelled, deleted):
        events = await stream_of(job.id)
        assert [t for t, _ in events] == ["status", "cancelled"]
        assert events[0][1]["status"] == "cancelled"
        assert events[1][1] == {
            "status": "cancelled",
            "progress": {"total": 3, "done": 0, "failed": 0, "pending": 0, "cancelled": 3},
        }


async def test_progress_has_one_shape_in_the_rest_snapshot_and_events(
    client: httpx.AsyncClient, alice: Account, seed: Seeder, redis: Redis
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=2)
    await seed.add_results(job.concept_ids[0])
    rest = (await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)).json()
    await publish(redis, job.id, completed())
    response = await get_stream(
        client, events_url(job.id), {**alice.headers, "Last-Event-ID": "0-0"}
    )
    terminal = parse_sse(response.text)[-1].json()
    await seed.set_job(job.id, status=JobStatus.completed)
    fresh = await get_stream(client, events_url(job.id), alice.headers)
    snapshot, from_db = (e.json() for e in parse_sse(fresh.text) if e.event)
    assert from_db["progress"] == snapshot["progress"]
    keys = set(Progress.model_fields)
    assert set(rest["progress"]) == set(snapshot["progress"]) == set(terminal["progress"]) == keys
    assert rest["progress"] == snapshot["progress"]
    assert rest["progress"] == {"total": 6, "done": 3, "failed": 0, "pending": 3, "cancelled": 0}
