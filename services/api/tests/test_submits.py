"""The batched submit path: one statement and one send per batch, connections kept only
while busy and replaced after an error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from roadmap_api.enqueue import Enqueuer
from roadmap_api.errors import is_database_outage
from roadmap_api.metrics import ApiMetrics
from roadmap_api.roadmaps import submits
from roadmap_api.roadmaps.submits import JobSubmitter
from roadmap_api.state import AppServices
from roadmap_api.testing import Account, queued_tasks, request_body
from roadmap_core.celery_app import create_celery_app
from roadmap_core.contracts import CONTENT_QUEUE
from roadmap_core.ids import new_id
from roadmap_core.settings import RedisSettings
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.job_actions import NewJob, QuotaLimits

LIMITS = QuotaLimits(max_active_jobs=50, jobs_per_day=50, tokens_per_day=10**9)


@pytest.fixture
async def submitter(
    db: ProcessDatabase, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[JobSubmitter, ApiMetrics]]:
    monkeypatch.setattr(submits, "IDLE_RELEASE_S", 0.2)
    celery = create_celery_app("submits-tests", RedisSettings(redis_url=redis_url))
    broker = Redis.from_url(redis_url)
    metrics = ApiMetrics()
    subject = JobSubmitter(db, Enqueuer(celery, broker, metrics, timeout_s=3.0), LIMITS)
    yield subject, metrics
    await subject.aclose()
    await broker.aclose()
    celery.close()


def job_for(owner: Account) -> NewJob:
    return NewJob(
        job_id=new_id(), owner_id=owner.id, request=json.dumps(request_body()), reserve_tokens=0
    )


async def test_concurrent_submits_share_statements_and_every_task_is_sent(
    submitter: tuple[JobSubmitter, ApiMetrics], alice: Account, bob: Account, redis: Redis
) -> None:
    subject, _ = submitter
    jobs = [job_for(alice if i % 2 else bob) for i in range(40)]
    outcomes = await asyncio.gather(*(subject.submit(job) for job in jobs))
    assert all(outcome.created for outcome in outcomes)
    sent = [t.payload["job_id"] for t in await queued_tasks(redis, CONTENT_QUEUE)]
    assert sorted(sent) == sorted(str(job.job_id) for job in jobs)


async def test_the_connection_goes_back_to_the_pool_when_idle(
    submitter: tuple[JobSubmitter, ApiMetrics], alice: Account, db: ProcessDatabase
) -> None:
    subject, _ = submitter
    pool = db.engine.pool
    assert isinstance(pool, QueuePool)
    assert (await subject.submit(job_for(alice))).created
    assert pool.checkedout() == 1  # kept for the next batch
    assert (await subject.submit(job_for(alice))).created
    assert pool.checkedout() == 1  # and reused
    await asyncio.sleep(0.7)
    assert pool.checkedout() == 0


async def test_a_broken_connection_fails_its_batch_then_is_replaced(
    submitter: tuple[JobSubmitter, ApiMetrics], alice: Account, db: ProcessDatabase
) -> None:
    subject, _ = submitter
    assert (await subject.submit(job_for(alice))).created
    async with db.engine.connect() as admin:
        # The held connection, and any idle one in the pool (pre-ping replaces those).
        killed = await admin.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name = 'roadmap-api-tests'"
            )
        )
    assert killed >= 1
    lost = job_for(alice)
    broken = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
    with pytest.raises(broken) as raised:
        await subject.submit(lost)
    assert is_database_outage(raised.value)  # so the API answers 503
    assert (await subject.submit(job_for(alice))).created  # a fresh connection
    async with db.engine.connect() as check:
        count = await check.scalar(
            text("SELECT count(*) FROM roadmap_jobs WHERE id = :id"), {"id": lost.job_id}
        )
    assert count == 0


async def test_a_failed_send_still_answers_and_is_counted(
    db: ProcessDatabase, alice: Account
) -> None:
    nobody = "redis://127.0.0.1:1/0"  # refused at once
    celery = create_celery_app("submits-tests", RedisSettings(redis_url=nobody))
    broker = Redis.from_url(nobody)
    metrics = ApiMetrics()
    subject = JobSubmitter(db, Enqueuer(celery, broker, metrics, timeout_s=0.5), LIMITS)
    try:
        outcomes = await asyncio.gather(*(subject.submit(job_for(alice)) for _ in range(3)))
        assert all(outcome.created for outcome in outcomes)
        assert metrics.enqueue_failures.labels("content.plan_job")._value.get() == 3
    finally:
        await subject.aclose()
        await broker.aclose()
        celery.close()


async def test_submits_go_out_through_the_app_s_one_enqueuer(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    services: AppServices = app.state.services
    sends: list[int] = []
    send = services.enqueuer.send

    async def counted(*args: Any, **kwargs: Any) -> bool:
        sends.append(1)
        return await send(*args, **kwargs)

    monkeypatch.setattr(services.enqueuer, "send", counted)
    response = await client.post("/api/v1/roadmaps", json=request_body(), headers=alice.headers)
    assert response.status_code == 202, response.text
    assert sends == [1]
