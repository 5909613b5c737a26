"""Health, readiness, metrics, admin views."""

from __future__ import annotations

import asyncio
import time

import httpx
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from roadmap_api.testing import Account, Seeder, request_body
from roadmap_core.contracts import CONTENT_QUEUE
from roadmap_core.domain import JobStatus
from roadmap_core.heartbeat import WorkerType, beat

from .conftest import METRICS_TOKEN, AppFactory, client_for


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_redis_and_workers(
    app_factory: AppFactory, redis_url: str
) -> None:
    app = await app_factory(readyz_require_workers=True)
    async with client_for(app) as client:
        missing = await client.get("/readyz")
        assert missing.status_code == 503
        checks = missing.json()["checks"]
        assert checks["database"]["ok"] is True
        assert checks["redis"]["ok"] is True
        assert checks["worker-content"] == {
            "ok": False,
            "detail": "no recent heartbeat",
            "duration_ms": None,
        }

        sync = SyncRedis.from_url(redis_url)
        try:
            beat(sync, WorkerType.content, "host-a:1", queue=CONTENT_QUEUE)
            beat(sync, WorkerType.logs, "host-b:2")
        finally:
            sync.close()
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert ready.json()["checks"]["worker-logs"]["detail"] == "1 alive"


async def test_readyz_fails_fast_without_database(app_factory: AppFactory) -> None:
    app = await app_factory(
        database_url="postgresql://postgres@127.0.0.1:9/none", readyz_timeout_s=1.0
    )
    async with client_for(app) as client:
        start = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - start
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["redis"]["ok"] is True
    assert elapsed < 5


async def test_readyz_releases_its_connection(app: object, client: httpx.AsyncClient) -> None:
    pool = app.state.services.db.engine.pool  # type: ignore[attr-defined]
    for _ in range(20):
        assert (await client.get("/readyz")).status_code == 200
    # A slow database (testcontainers under load) can still be finishing a check-in when the
    # response is back; a leak would keep all twenty checked out, and never come back.
    for _ in range(100):
        if pool.checkedout() == 0:
            break
        await asyncio.sleep(0.05)
    assert pool.checkedout() == 0


async def test_metrics(client: httpx.AsyncClient, alice: Account, seed: Seeder) -> None:
    await seed.job(alice, status=JobStatus.completed)
    job_id = (
        await client.post("/api/v1/roadmaps", json=request_body(), headers=alice.headers)
    ).json()["id"]
    await client.get(f"/api/v1/roadmaps/{job_id}?secret=value", headers=alice.headers)
    assert (await client.get("/metrics")).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token-at-all"}
    assert (await client.get("/metrics", headers=wrong)).status_code == 401
    assert (await client.get("/metrics", headers=alice.headers)).status_code == 401
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'roadmap_jobs{status="queued"} 1.0' in text
    assert 'roadmap_jobs{status="completed"} 1.0' in text
    assert 'roadmap_queue_depth{queue="content_generation"} 1.0' in text
    assert (
        'roadmap_api_request_duration_seconds_count{method="GET",'
        'route="/api/v1/roadmaps/{roadmap_id}",status="200"}'
    ) in text
    assert job_id not in text
    assert "secret" not in text


async def test_metrics_are_not_served_without_a_scrape_token(app_factory: AppFactory) -> None:
    app = await app_factory(metrics_token=None)
    async with client_for(app) as client:
        answer = await client.get("/metrics", headers={"Authorization": "Bearer anything-at-all"})
    assert answer.status_code == 404


async def test_admin_queues(
    client: httpx.AsyncClient, admin: Account, alice: Account, redis: Redis, redis_url: str
) -> None:
    for _ in range(2):
        await client.post("/api/v1/roadmaps", json=request_body(), headers=alice.headers)
    sync = SyncRedis.from_url(redis_url)
    try:
        beat(sync, WorkerType.content, "host-a:1", concurrency=2)
    finally:
        sync.close()
    await asyncio.sleep(0.05)
    response = await client.get("/api/v1/admin/queues", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    queues = {q["name"]: q for q in body["queues"]}
    assert queues["content_generation"]["depth"] == 2
    assert 0 < queues["content_generation"]["oldest_age_s"] < 60
    assert queues["logs"]["depth"] >= 0
    workers = body["workers"]["worker-content"]
    assert [w["instance"] for w in workers] == ["host-a:1"]
    assert workers[0]["info"] == {"concurrency": 2}
    assert body["workers"]["worker-logs"] == []

    forbidden = await client.get("/api/v1/admin/queues", headers=alice.headers)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/admin/queues")).status_code == 401


async def test_admin_roadmaps(
    client: httpx.AsyncClient, admin: Account, alice: Account, bob: Account, seed: Seeder
) -> None:
    a = await seed.job(alice)
    b = await seed.job(bob, status=JobStatus.completed)
    listed = await client.get("/api/v1/admin/roadmaps", headers=admin.headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(i["id"], i["owner_email"]) for i in items] == [
        (str(b.id), bob.email),
        (str(a.id), alice.email),
    ]
    only_done = await client.get(
        "/api/v1/admin/roadmaps", params={"status": "completed", "limit": 1}, headers=admin.headers
    )
    assert [i["id"] for i in only_done.json()["items"]] == [str(b.id)]
    assert (await client.get("/api/v1/admin/roadmaps", headers=alice.headers)).status_code == 403
    assert (
        await client.get("/api/v1/admin/roadmaps", params={"cursor": "%%"}, headers=admin.headers)
    ).status_code == 400


async def test_pool_is_opened_at_startup(app_factory: AppFactory) -> None:
    app = await app_factory(db_pool_prewarm=3)
    pool = app.state.services.db.engine.pool
    assert pool.checkedin() == 3
    assert pool.checkedout() == 0


async def test_startup_survives_a_database_that_is_down(app_factory: AppFactory) -> None:
    app = await app_factory(
        database_url="postgresql://postgres@127.0.0.1:9/none", db_pool_prewarm=2
    )
    async with client_for(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
