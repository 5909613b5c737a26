"""Process faults and shared limits, each with workers of its own: a child SIGKILLed
mid-generation, a job that kills every process planning it, SIGTERM during work,
and two worker processes sharing one global request rate."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter

import pytest
from celery import Celery
from redis import Redis as SyncRedis
from sqlalchemy import select

from roadmap_core import contracts
from roadmap_core.contracts import CONTENT_QUEUE
from roadmap_core.domain import JobStatus
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import Concept, ContentItem, ContentResult
from roadmap_db.repositories import job_lifecycle as jobs
from roadmap_db.repositories.frameworks import latest_review_round
from roadmap_dev.fake_llm import FakeLLM, FaultKind, FaultRule
from roadmap_worker_content.testing import (
    WorkerFactory,
    WorkerProcess,
    make_request,
    submit_job,
    wait_for_job,
)

DONE = {JobStatus.completed, JobStatus.partial_failure, JobStatus.failed, JobStatus.cancelled}
CONTENT_SCHEMAS = {"Tutorial", "ResourceList", "Quiz"}
SCHEMA_KIND = {"Tutorial": "tutorial", "ResourceList": "resources", "Quiz": "quiz"}


async def _saved(db: ProcessDatabase, job_id: uuid.UUID) -> list[tuple[str, str, ContentResult]]:
    async with db.sessions() as s:
        rows = await s.execute(
            select(Concept.key, ContentItem.kind, ContentResult)
            .join(ContentItem, ContentItem.concept_id == Concept.id)
            .join(ContentResult, ContentResult.item_id == ContentItem.id)
            .where(Concept.job_id == job_id)
        )
        return [(key, kind.value, result) for key, kind, result in rows]


async def _stop_a_child_between_saves(
    worker: WorkerProcess,
    fake: FakeLLM,
    db: ProcessDatabase,
    job_id: uuid.UUID,
    *,
    within_s: float,
) -> tuple[int, set[tuple[str, str]]]:
    """Freeze (SIGSTOP) a prefork child that has saved some of its items and not all yet;
    returns its pid and every item saved at that moment. Polls the state, not the clock: a
    loaded machine only makes it take longer."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        children = set(worker.children())
        owner = {
            r["concept_id"]: r["pid"]
            for r in fake.requests()
            if r["schema"] in CONTENT_SCHEMAS and r["pid"] in children
        }
        for pid in set(owner.values()):
            concepts = {key for key, holder in owner.items() if holder == pid}
            os.kill(pid, signal.SIGSTOP)
            try:
                saved = {(key, kind) for key, kind, _ in await _saved(db, job_id)}
            except BaseException:
                os.kill(pid, signal.SIGCONT)
                raise
            own = {item for item in saved if item[0] in concepts}
            if own and len(own) < len(concepts) * len(CONTENT_SCHEMAS):
                return pid, saved  # stopped mid-batch: some items stored, some not
            os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no child was seen between two saves of its batch in {within_s} s")


async def test_a_child_killed_mid_generation_resumes_without_repeating_saved_items(
    workers: WorkerFactory, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery
) -> None:
    # A long lease: finishing in time proves the redelivered message took its own claims
    # over at once instead of waiting for them to expire.
    worker = workers(env={"CONCEPT_BATCH_SIZE": "2", "LLM_CONCURRENCY": "2", "ITEM_LEASE_S": "120"})
    fake.configure(latency_ms=200.0)
    job_id = await submit_job(db, celery_client)
    # Stopped first, then killed: nothing it saves can slip in between what we read and
    # the kill, so "saved before the kill" is exact however loaded the machine is.
    victim, saved_before = await _stop_a_child_between_saves(worker, fake, db, job_id, within_s=45)
    os.kill(victim, signal.SIGKILL)
    job = await wait_for_job(db, job_id, DONE, within_s=45, workers=[worker])
    assert job.status is JobStatus.completed

    saved = await _saved(db, job_id)
    assert len(saved) == 12
    assert {r.version for _, _, r in saved} == {1}
    requests = [r for r in fake.requests() if r["schema"] in CONTENT_SCHEMAS]
    per_item = Counter((r["concept_id"], SCHEMA_KIND[str(r["schema"])]) for r in requests)
    for item in saved_before:
        assert per_item[item] == 1, f"{item} was saved before the kill but asked for again"
    victims_concepts = {r["concept_id"] for r in requests if r["pid"] == victim}
    resumed = {
        (r["concept_id"], SCHEMA_KIND[str(r["schema"])])
        for r in requests
        if r["concept_id"] in victims_concepts and r["pid"] not in (victim, None)
    }
    assert resumed, "nobody took the killed child's batch over"
    assert not resumed & saved_before


async def test_a_plan_that_keeps_killing_its_process_ends_failed(
    workers: WorkerFactory, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery
) -> None:
    worker = workers(concurrency=1, env={"LLM_TASK_MAX_ATTEMPTS": "2"})
    fake.configure(
        rules=[
            FaultRule(fault=FaultKind.kill, match_schema="IntentAnalysis", times=None).model_dump()
        ]
    )
    job_id = await submit_job(db, celery_client)
    job = await wait_for_job(db, job_id, DONE, within_s=60, workers=[worker])
    assert job.status is JobStatus.failed
    assert job.error is not None
    assert "2 attempts" in job.error
    assert [r["schema"] for r in fake.requests()] == ["IntentAnalysis"] * 2
    await asyncio.sleep(3)  # several reconciler intervals: nothing picks it up again
    assert len(fake.requests()) == 2


async def test_an_item_that_keeps_killing_its_process_ends_failed(
    workers: WorkerFactory, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery
) -> None:
    worker = workers(env={"CONCEPT_BATCH_SIZE": "4", "LLM_TASK_MAX_ATTEMPTS": "2"})
    job_id = await submit_job(db, celery_client, make_request(review=True))
    await wait_for_job(db, job_id, {JobStatus.awaiting_review}, workers=[worker])
    async with db.sessions() as s:
        keys = list(
            (
                await s.execute(
                    select(Concept.key).where(Concept.job_id == job_id).order_by(Concept.position)
                )
            ).scalars()
        )
        round_ = await latest_review_round(s, job_id)
    assert round_ is not None
    poison = keys[2]
    fake.configure(
        rules=[
            FaultRule(
                fault=FaultKind.kill,
                match_schema="Quiz",
                match_prompt=f"Concept id: {poison}\n",
                times=None,
            ).model_dump()
        ]
    )
    async with db.transaction() as s:
        assert await jobs.approve_review(s, job_id, round_.id)
    await asyncio.to_thread(contracts.send_apply_review, celery_client, job_id, round_.id)
    job = await wait_for_job(db, job_id, DONE, within_s=90, workers=[worker])

    assert job.status is JobStatus.partial_failure
    assert job.error == f"1 item(s) failed: {poison}/quiz"
    kills = [r for r in fake.requests() if r.get("killed")]
    assert len(kills) == 2  # one per attempt, then never again
    saved = await _saved(db, job_id)
    assert len(saved) == 11
    assert {r.version for _, _, r in saved} == {1}


@pytest.mark.slow
async def test_sigterm_hands_running_work_back(
    workers: WorkerFactory,
    fake: FakeLLM,
    db: ProcessDatabase,
    celery_client: Celery,
    redis_url: str,
) -> None:
    # No reconciler and leases far longer than the test: only the handed-back message,
    # redelivered with its claims, can finish the job.
    env = {
        "CONCEPT_BATCH_SIZE": "4",
        "LLM_CONCURRENCY": "4",
        "RECONCILER_ENABLED": "false",
        "ITEM_LEASE_S": "600",
        "STALE_AGE_S": "600",
        "SOFT_SHUTDOWN_TIMEOUT_S": "2",
    }
    first = workers(concurrency=1, env=env)
    fake.configure(latency_ms=3000.0)
    job_id = await submit_job(db, celery_client)
    await wait_for_job(db, job_id, {JobStatus.generating}, workers=[first])
    await asyncio.sleep(1.0)  # the generation task is running, its calls are in flight

    started = time.monotonic()
    assert first.terminate(timeout=30) is not None
    assert time.monotonic() - started < 20
    # The shutdown's own handlers ran in the real main process (its stderr is Celery's
    # logging proxy there), the cold-shutdown guard among them, without an error.
    assert "Signal handler" not in first.log(), first.log()[-3000:]
    redis = SyncRedis.from_url(redis_url)
    try:
        assert redis.llen(CONTENT_QUEUE) == 1
    finally:
        redis.close()

    fake.configure(latency_ms=50.0)
    second = workers(concurrency=1, env=env)
    job = await wait_for_job(db, job_id, DONE, within_s=30, workers=[first, second])
    assert job.status is JobStatus.completed
    saved = await _saved(db, job_id)
    assert len(saved) == 12
    assert {r.version for _, _, r in saved} == {1}


@pytest.mark.slow
async def test_two_workers_never_exceed_the_global_request_rate(
    workers: WorkerFactory, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery
) -> None:
    # 10 requests per 5 s, shared through Redis by both workers. The window is long next to
    # the skew below, and one limiter per worker would let 18 content calls out at once.
    rate, window = 10, 5.0
    env = {
        "LLM_RPM": str(int(rate * 60 / window)),
        "LLM_RATE_WINDOW_S": str(window),
        "CONCEPT_BATCH_SIZE": "1",
        "LLM_CONCURRENCY": "4",
    }
    one, two = workers(env=env), workers(env=env)
    children = {"one": set(one.children()), "two": set(two.children())}
    fake.configure(concepts=6)
    job_id = await submit_job(db, celery_client)
    job = await wait_for_job(db, job_id, DONE, within_s=60, workers=[one, two])
    assert job.status is JobStatus.completed

    requests = fake.requests()
    assert len(requests) == 2 + 6 * 3
    pids = {r["pid"] for r in requests}
    assert pids & children["one"]
    assert pids & children["two"]
    ts = sorted(float(r["ts"]) for r in requests)  # arrival at the fake
    # The limiter admits on Redis's clock; a request reaches the fake a little later, by a
    # varying delay (more on a busy machine), hence the skew allowed.
    skew = 0.5
    spans = [ts[i + rate] - ts[i] for i in range(len(ts) - rate)]
    assert min(spans) >= window - skew, f"{rate + 1} requests within {min(spans):.3f}s"
