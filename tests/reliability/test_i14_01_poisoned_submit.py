"""Issue 14, item 1: one request's input never fails another request.

Concurrent submits of different users share one batched statement
(``roadmap_submit_jobs``). Text PostgreSQL cannot store is refused by validation, naming
the field; and should a row still fail in the database, only its own request fails: the
batch is retried without it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from roadmap_api.enqueue import Enqueuer
from roadmap_api.metrics import ApiMetrics
from roadmap_api.roadmaps.submits import JobSubmitter
from roadmap_core.celery_app import create_celery_app
from roadmap_core.ids import new_id
from roadmap_core.settings import RedisSettings
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.job_actions import NewJob, QuotaLimits
from roadmap_db.testing import settings_for
from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.http import api_client, new_users
from tests.support.inproc import API, roadmap_body
from tests.support.stack import Stack

USERS = 20
ROUNDS = 3
# What PostgreSQL refuses to store in text or jsonb, spelled the ways JSON can carry it.
POISONS = {
    "goal": "Learn SQL \u0000 joins",
    "background": "I know \u0000 nothing",
    "learning_style": "\u0000",
}


@pytest.mark.slow
async def test_i14_01_twenty_users_and_one_poisoned_submit_20x202_and_one_422(
    stack: Stack, db: Db, capture: Capture
) -> None:
    stack.start(content_workers=0, logs_worker=False, REGISTER_IP_MAX="1000")
    assert stack.api is not None
    async with api_client(stack.api.url, capture) as http:
        users = await new_users(http, capture, USERS + 1)
        accepted: list[str] = []
        for field, poison in [*POISONS.items(), ("goal", POISONS["goal"])][:ROUNDS]:
            # The poisoned submit goes in the middle, so it shares a batch with others.
            bodies = [roadmap_body() for _ in range(USERS)]
            bodies.insert(USERS // 2, roadmap_body(**{field: poison}))
            answers = await asyncio.gather(
                *(
                    http.post(f"{API}/roadmaps", json=body, headers=user.headers)
                    for user, body in zip(users, bodies, strict=True)
                )
            )
            poisoned = answers.pop(USERS // 2)
            codes = [a.status_code for a in answers]
            assert codes == [202] * USERS, f"others: {Counter(codes)}, poisoned: {poisoned.text}"
            assert poisoned.status_code == 422, poisoned.text
            problem = poisoned.json()
            assert poisoned.headers["content-type"].startswith("application/problem+json")
            assert [e["loc"] for e in problem["errors"]] == [["body", field]]
            assert "NUL" in problem["errors"][0]["msg"]
            accepted += [a.json()["id"] for a in answers]

    rows = await db.fetch("SELECT id::text AS id FROM roadmap_jobs")
    assert sorted(r["id"] for r in rows) == sorted(accepted)


@pytest.fixture
async def submitter(clean_state: str, redis_url: str) -> AsyncIterator[JobSubmitter]:
    database = ProcessDatabase(settings_for(clean_state), "roadmap-tests")
    celery = create_celery_app("i14-tests", RedisSettings(redis_url=redis_url))
    broker = Redis.from_url(redis_url)
    limits = QuotaLimits(max_active_jobs=50, jobs_per_day=50, tokens_per_day=10**9)
    subject = JobSubmitter(database, Enqueuer(celery, broker, ApiMetrics(), timeout_s=3.0), limits)
    yield subject
    await subject.aclose()
    await broker.aclose()
    celery.close()
    await database.dispose()


async def test_i14_01_a_row_the_database_refuses_fails_only_its_own_submit(
    submitter: JobSubmitter, db: Db
) -> None:
    """Validation bypassed: the rows reach the batched statement as they are."""
    owners = [new_id() for _ in range(USERS)]
    for owner in owners:
        await db.execute(
            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')",
            owner,
            f"owner-{uuid.uuid4().hex[:8]}@example.com",
        )
    good = [
        NewJob(
            job_id=new_id(), owner_id=owner, request=json.dumps(roadmap_body()), reserve_tokens=0
        )
        for owner in owners
    ]
    # Both are refused by PostgreSQL while it reads the statement's jsonb[] parameter.
    bad = [
        NewJob(new_id(), owners[0], '{"goal": "a\\u0000b"}', reserve_tokens=0),
        NewJob(new_id(), owners[1], "not json", reserve_tokens=0),
    ]
    jobs = good[:7] + bad[:1] + good[7:14] + bad[1:] + good[14:]
    outcomes = await asyncio.gather(
        *(submitter.submit(job) for job in jobs), return_exceptions=True
    )
    by_id = {job.job_id: outcome for job, outcome in zip(jobs, outcomes, strict=True)}
    for job in good:
        outcome = by_id[job.job_id]
        assert not isinstance(outcome, BaseException), outcome
        assert outcome.created
    for job in bad:
        assert isinstance(by_id[job.job_id], asyncpg.DataError), by_id[job.job_id]
    stored = await db.fetch("SELECT id FROM roadmap_jobs")
    assert sorted(r["id"] for r in stored) == sorted(job.job_id for job in good)
