"""Submitting, listing, reading and changing roadmap jobs; what gets enqueued (and when not)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from roadmap_api.testing import Account, Seeder, problem, queued_tasks, request_body
from roadmap_core.contracts import CONTENT_QUEUE
from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, JobStep, ReviewDecision
from roadmap_devservers.embedded import EmbeddedRedis

from .conftest import AppFactory, client_for


async def submit(client: httpx.AsyncClient, who: Account, **overrides: Any) -> httpx.Response:
    return await client.post(
        "/api/v1/roadmaps", json=request_body(**overrides), headers=who.headers
    )


async def test_submit_commits_then_enqueues(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder
) -> None:
    response = await submit(client, alice, language="zh", review=True)
    assert response.status_code == 202, response.text
    body = response.json()
    job_id = body["id"]
    assert body["status"] == "queued"
    assert body["links"] == {
        "self": f"/api/v1/roadmaps/{job_id}",
        "events": f"/api/v1/roadmaps/{job_id}/events",
        "logs": f"/api/v1/roadmaps/{job_id}/logs",
    }
    assert response.headers["Location"] == f"/api/v1/roadmaps/{job_id}"

    job = await seed.get_job(uuid.UUID(job_id))
    assert job.owner_id == alice.id
    assert job.status is JobStatus.queued
    assert job.enqueued_at is not None
    assert job.request["language"] == "zh"
    assert job.request["review"] is True

    tasks = await queued_tasks(redis, CONTENT_QUEUE)
    assert [(t.name, t.payload) for t in tasks] == [("content.plan_job", {"job_id": job_id})]
    assert isinstance(tasks[0].headers["sent_at"], float)


@pytest.mark.parametrize(
    "overrides",
    [
        {"owner": "00000000-0000-0000-0000-000000000000"},
        {"owner_id": "00000000-0000-0000-0000-000000000000"},
        {"status": "completed"},
        {"cost": 0},
        {"cost_usd": 0},
        {"level": "expert"},
        {"weekly_hours": 0},
        {"weeks": 500},
        {"goal": "x" * 501},
        {"goal": ""},
        {"language": "not a language"},
        {"background": "b" * 2001},
    ],
)
async def test_submit_rejects_invalid_and_unknown_fields(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder, overrides: dict[str, Any]
) -> None:
    body = problem(await submit(client, alice, **overrides), 422)
    assert body["errors"]
    assert body["type"].endswith(":validation")
    assert await seed.job_count() == 0
    assert await queued_tasks(redis, CONTENT_QUEUE) == []


async def test_submit_rejects_missing_fields_and_non_json(
    client: httpx.AsyncClient, alice: Account
) -> None:
    problem(await client.post("/api/v1/roadmaps", json={"goal": "x"}, headers=alice.headers), 422)
    problem(
        await client.post(
            "/api/v1/roadmaps",
            content=b"{not json",
            headers={**alice.headers, "Content-Type": "application/json"},
        ),
        400,
    )


async def test_body_size_limit(app_factory: AppFactory, alice: Account, seed: Seeder) -> None:
    app = await app_factory(max_body_bytes=2048)
    async with client_for(app) as client:
        big = problem(await submit(client, alice, background="b" * 1900, goal="g" * 400), 413)
        assert "2048" in big["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            # No Content-Length: the limit must count the bytes as they stream in.
            yield b'{"goal": "'
            for _ in range(10):
                yield b"x" * 400
            yield b'", "level": "beginner", "weekly_hours": 1, "weeks": 1}'

        streamed = await client.post(
            "/api/v1/roadmaps",
            content=chunks(),
            headers={**alice.headers, "Content-Type": "application/json"},
        )
        problem(streamed, 413)
        assert (await submit(client, alice)).status_code == 202
    assert await seed.job_count() == 1


async def test_quotas_reject_with_nothing_written_or_enqueued(
    app_factory: AppFactory, alice: Account, redis: Redis, seed: Seeder
) -> None:
    app = await app_factory(
        quota_max_active_jobs=2, quota_jobs_per_day=3, quota_active_retry_after_s=30
    )
    async with client_for(app) as client:
        first = (await submit(client, alice)).json()["id"]
        second = (await submit(client, alice)).json()["id"]

        active = await submit(client, alice)
        body = problem(active, 429)
        assert body["quota"] == "active_jobs"
        assert body["limit"] == 2
        assert active.headers["Retry-After"] == "30"
        assert await seed.job_count() == 2
        assert len(await queued_tasks(redis, CONTENT_QUEUE)) == 2

        await seed.set_job(uuid.UUID(first), status=JobStatus.completed)
        assert (await submit(client, alice)).status_code == 202

        # Finished and deleted jobs still count towards the day.
        await seed.set_job(uuid.UUID(second), status=JobStatus.cancelled)
        assert (
            await client.delete(f"/api/v1/roadmaps/{second}", headers=alice.headers)
        ).status_code == 204
        daily = await submit(client, alice)
        body = problem(daily, 429)
        assert body["quota"] == "jobs_per_day"
        assert 0 < int(daily.headers["Retry-After"]) <= 24 * 3600
        assert await seed.job_count() == 3
        assert len(await queued_tasks(redis, CONTENT_QUEUE)) == 3


async def test_token_quota(
    app_factory: AppFactory, alice: Account, redis: Redis, seed: Seeder
) -> None:
    app = await app_factory(quota_tokens_per_day=1000)
    await seed.job(alice, status=JobStatus.completed, tokens=1000)
    async with client_for(app) as client:
        body = problem(await submit(client, alice), 429)
    assert body["quota"] == "tokens_per_day"
    assert await seed.job_count() == 1
    assert await queued_tasks(redis, CONTENT_QUEUE) == []


async def test_concurrent_submits_cannot_overrun_the_quota(
    app_factory: AppFactory, alice: Account, redis: Redis, seed: Seeder
) -> None:
    app = await app_factory(quota_max_active_jobs=3)
    async with client_for(app) as client:
        responses = await asyncio.gather(*(submit(client, alice) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [202] * 3 + [429] * 7
    assert await seed.job_count() == 3
    assert len(await queued_tasks(redis, CONTENT_QUEUE)) == 3


async def test_quotas_are_per_user(app_factory: AppFactory, alice: Account, bob: Account) -> None:
    app = await app_factory(quota_max_active_jobs=1)
    async with client_for(app) as client:
        assert (await submit(client, alice)).status_code == 202
        problem(await submit(client, alice), 429)
        assert (await submit(client, bob)).status_code == 202


async def test_list_paginates_and_filters(
    client: httpx.AsyncClient, alice: Account, bob: Account, seed: Seeder
) -> None:
    ids = [(await submit(client, alice, goal=f"Goal {i}")).json()["id"] for i in range(5)]
    await submit(client, bob)
    await seed.set_job(uuid.UUID(ids[0]), status=JobStatus.completed)

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/roadmaps", params=params, headers=alice.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))

    completed = await client.get(
        "/api/v1/roadmaps", params={"status": "completed"}, headers=alice.headers
    )
    assert [i["id"] for i in completed.json()["items"]] == [ids[0]]
    item = completed.json()["items"][0]
    assert item["goal"] == "Goal 0"
    assert item["progress"] == {"total": 0, "done": 0, "failed": 0, "pending": 0, "cancelled": 0}


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "!!!"},
        {"cursor": "WyJub3QtYS11dWlkIl0"},
        {"limit": 0},
        {"limit": 101},
        {"status": "nope"},
    ],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, alice: Account, params: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/roadmaps", params=params, headers=alice.headers)
    assert response.status_code in (400, 422)
    problem(response, response.status_code)


async def test_detail_with_framework(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(
        alice, status=JobStatus.generating, concepts=2, item_status=ItemStatus.queued
    )
    await seed.add_results(job.concept_ids[0])
    await seed.set_job(job.id, prompt_tokens=120, completion_tokens=80, llm_calls=2)
    response = await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "generating"
    assert body["progress"] == {"total": 6, "done": 3, "failed": 0, "pending": 3, "cancelled": 0}
    assert body["usage"] == {
        "prompt_tokens": 120, "completion_tokens": 80, "cost_usd": 0.0, "llm_calls": 2
    }  # fmt: skip
    assert body["request"]["goal"] == request_body()["goal"]
    framework = body["framework"]
    assert framework["title"] == "Embedded Rust"
    concepts = framework["stages"][0]["modules"][0]["concepts"]
    assert [c["key"] for c in concepts] == ["concept-0", "concept-1"]
    assert concepts[0]["content"]["tutorial"] == {
        "status": "succeeded",
        "version": 1,
        "error": None,
    }
    assert concepts[1]["content"]["quiz"]["status"] == "queued"
    assert concepts[1]["prerequisites"] == ["concept-0"]


async def test_detail_before_planning(client: httpx.AsyncClient, alice: Account) -> None:
    job_id = (await submit(client, alice)).json()["id"]
    body = (await client.get(f"/api/v1/roadmaps/{job_id}", headers=alice.headers)).json()
    assert body["framework"] is None
    assert body["review"] is None
    assert body["current_step"] == JobStep.queued


async def test_cancel(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    response = await client.post(f"/api/v1/roadmaps/{job.id}/cancel", headers=alice.headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    assert (await seed.get_job(job.id)).status is JobStatus.cancelled
    assert {i.status for i in await seed.items(job.id)} == {ItemStatus.cancelled}
    tasks = await queued_tasks(redis, CONTENT_QUEUE)
    assert [(t.name, t.payload) for t in tasks] == [("content.cancel_job", {"job_id": str(job.id)})]

    body = problem(
        await client.post(f"/api/v1/roadmaps/{job.id}/cancel", headers=alice.headers), 409
    )
    assert body["status_now"] == "cancelled"
    assert len(await queued_tasks(redis, CONTENT_QUEUE)) == 1


async def test_retry(client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder) -> None:
    job = await seed.job(
        alice, status=JobStatus.partial_failure, concepts=1, item_status=ItemStatus.succeeded
    )
    await seed.set_items(job.id, ItemStatus.failed, kind=ContentKind.quiz)
    response = await client.post(f"/api/v1/roadmaps/{job.id}/retry", headers=alice.headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "generating"
    statuses = {ContentKind(i.kind): i.status for i in await seed.items(job.id)}
    assert statuses[ContentKind.quiz] is ItemStatus.queued
    assert statuses[ContentKind.tutorial] is ItemStatus.succeeded
    tasks = await queued_tasks(redis, CONTENT_QUEUE)
    assert [(t.name, t.payload) for t in tasks] == [
        ("content.retry_failed", {"job_id": str(job.id)})
    ]
    problem(await client.post(f"/api/v1/roadmaps/{job.id}/retry", headers=alice.headers), 409)


async def test_review_approve(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder
) -> None:
    job = await seed.job(
        alice,
        status=JobStatus.awaiting_review,
        concepts=2,
        item_status=ItemStatus.pending,
        review=True,
    )
    before = (await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)).json()
    assert before["review"]["decision"] == "pending"
    response = await client.post(
        f"/api/v1/roadmaps/{job.id}/review", json={"approve": True}, headers=alice.headers
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "generating"
    assert {i.status for i in await seed.items(job.id)} == {ItemStatus.queued}
    tasks = await queued_tasks(redis, CONTENT_QUEUE)
    assert [(t.name, t.payload) for t in tasks] == [
        ("content.apply_review", {"job_id": str(job.id), "round_id": str(job.round_id)})
    ]
    after = (await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)).json()
    assert after["review"]["decision"] == ReviewDecision.approved
    problem(
        await client.post(
            f"/api/v1/roadmaps/{job.id}/review", json={"approve": True}, headers=alice.headers
        ),
        409,
    )


async def test_review_with_feedback(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder
) -> None:
    job = await seed.job(
        alice,
        status=JobStatus.awaiting_review,
        concepts=1,
        item_status=ItemStatus.pending,
        review=True,
    )
    problem(
        await client.post(
            f"/api/v1/roadmaps/{job.id}/review", json={"approve": False}, headers=alice.headers
        ),
        422,
    )
    problem(
        await client.post(
            f"/api/v1/roadmaps/{job.id}/review",
            json={"approve": True, "round": 3},
            headers=alice.headers,
        ),
        422,
    )
    response = await client.post(
        f"/api/v1/roadmaps/{job.id}/review",
        json={"approve": False, "feedback": "More on interrupts, less on cargo."},
        headers=alice.headers,
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    row = await seed.get_job(job.id)
    assert row.status is JobStatus.queued
    assert row.current_step is JobStep.revision
    detail = (await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)).json()
    assert detail["review"]["decision"] == "changes_requested"
    assert detail["review"]["feedback"] == "More on interrupts, less on cargo."
    assert [t.name for t in await queued_tasks(redis, CONTENT_QUEUE)] == ["content.apply_review"]


async def test_review_needs_awaiting_review(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    body = problem(
        await client.post(
            f"/api/v1/roadmaps/{job.id}/review", json={"approve": True}, headers=alice.headers
        ),
        409,
    )
    assert body["status_now"] == "generating"


async def test_delete(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder
) -> None:
    running = await seed.job(alice, status=JobStatus.planning)
    finished = await seed.job(alice, status=JobStatus.completed)
    assert (
        await client.delete(f"/api/v1/roadmaps/{running.id}", headers=alice.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/api/v1/roadmaps/{finished.id}", headers=alice.headers)
    ).status_code == 204
    row = await seed.get_job(running.id)
    assert row.deleted_at is not None
    assert row.status is JobStatus.cancelled
    assert (await seed.get_job(finished.id)).status is JobStatus.completed
    tasks = await queued_tasks(redis, CONTENT_QUEUE)
    assert [(t.name, t.payload) for t in tasks] == [
        ("content.cancel_job", {"job_id": str(running.id)})
    ]
    problem(await client.get(f"/api/v1/roadmaps/{running.id}", headers=alice.headers), 404)
    problem(await client.delete(f"/api/v1/roadmaps/{running.id}", headers=alice.headers), 404)
    listed = (await client.get("/api/v1/roadmaps", headers=alice.headers)).json()
    assert listed["items"] == []


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, alice: Account) -> None:
    problem(await client.get(f"/api/v1/roadmaps/{uuid.uuid4()}", headers=alice.headers), 404)
    problem(await client.get("/api/v1/roadmaps/not-a-uuid", headers=alice.headers), 422)
    problem(
        await client.post(f"/api/v1/roadmaps/{uuid.uuid4()}/cancel", headers=alice.headers), 404
    )


async def test_redis_down_still_accepts(
    app_factory: AppFactory, own_redis: EmbeddedRedis, alice: Account, seed: Seeder
) -> None:
    app = await app_factory(redis_url=own_redis.url, enqueue_timeout_s=2.0)
    own_redis.stop()
    async with client_for(app) as client:
        response = await submit(client, alice)
    assert response.status_code == 202, response.text
    job = await seed.get_job(uuid.UUID(response.json()["id"]))
    assert job.status is JobStatus.queued
    assert job.enqueued_at is not None
    metrics = app.state.metrics.enqueue_failures.labels("content.plan_job")._value.get()
    assert metrics == 1


async def test_concurrent_submits_are_all_enqueued_once(
    app_factory: AppFactory, alice: Account, bob: Account, redis: Redis, seed: Seeder
) -> None:
    # Sends that pile up go out together (one Redis pipeline): none may be lost or doubled.
    app = await app_factory(
        quota_max_active_jobs=100, quota_jobs_per_day=100, quota_tokens_per_day=10**12
    )
    async with client_for(app) as client:
        responses = await asyncio.gather(
            *(submit(client, alice if i % 2 else bob) for i in range(40))
        )
    assert {r.status_code for r in responses} == {202}
    queued = [t.payload["job_id"] for t in await queued_tasks(redis, CONTENT_QUEUE)]
    assert sorted(queued) == sorted(r.json()["id"] for r in responses)
    assert await seed.job_count() == 40
