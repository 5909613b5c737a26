"""End-to-end flows through a running worker: real Postgres, Redis, Celery prefork, fake LLM.

Jobs are submitted the way the API does it (row inserted and committed, then
``content.plan_job`` sent through the contracts). One worker serves the whole
module; tests that need a worker of their own are in ``test_faults.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from redis import Redis as SyncRedis
from sqlalchemy import func, select

from roadmap_core import contracts
from roadmap_core.contracts import CONTENT_QUEUE
from roadmap_core.domain import (
    STORED_CONTENT_MODELS,
    ContentKind,
    ItemStatus,
    JobStatus,
    ReviewDecision,
)
from roadmap_core.logdetails import (
    JobFinishedDetails,
    LogDetails,
    PlanReadyForReviewDetails,
    parse_produced,
)
from roadmap_core.progress import Progress, ProgressType
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import Concept, ContentItem, ContentResult, LLMCall
from roadmap_db.repositories import job_lifecycle as jobs
from roadmap_db.repositories.frameworks import latest_review_round
from roadmap_db.repositories.item_results import result_versions
from roadmap_dev.fake_llm import FakeLLM, FaultKind, FaultRule
from roadmap_worker_content.testing import (
    WorkerProcess,
    make_request,
    progress_events,
    running_worker,
    shipped_log_events,
    submit_job,
    wait_for_job,
)

MAX_ATTEMPTS = 3
SDK_RETRIES = 2
CONTENT_SCHEMAS = {"Tutorial", "ResourceList", "Quiz"}
DONE = {JobStatus.completed, JobStatus.partial_failure, JobStatus.failed, JobStatus.cancelled}


@pytest.fixture(scope="module")
def worker(
    migrated_url: str,
    redis_url: str,
    fake_server: FakeLLM,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    with running_worker(
        database_url=migrated_url,
        redis_url=redis_url,
        llm_base_url=fake_server.base_url,
        log_dir=tmp_path_factory.mktemp("worker"),
        concurrency=2,
        env={
            "CONCEPT_BATCH_SIZE": "2",
            "LLM_TIMEOUT_S": "2",
            "LLM_SDK_MAX_RETRIES": str(SDK_RETRIES),
            "LLM_TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        },
    ) as w:
        yield w


async def _results(
    db: ProcessDatabase, job_id: uuid.UUID
) -> list[tuple[str, ContentKind, ContentResult]]:
    async with db.sessions() as s:
        rows = await s.execute(
            select(Concept.key, ContentItem.kind, ContentResult)
            .join(ContentItem, ContentItem.concept_id == Concept.id)
            .join(ContentResult, ContentResult.item_id == ContentItem.id)
            .where(Concept.job_id == job_id)
            .order_by(Concept.position, ContentItem.kind, ContentResult.version)
        )
        return [(key, kind, result) for key, kind, result in rows]


async def _job_log_details(redis_url: str, job_id: uuid.UUID) -> list[LogDetails]:
    """The details of every event the worker logged for the job, each validated against the
    kinds the API contract declares (``parse_produced`` refuses any other kind or shape)."""
    finished: list[dict[str, Any]] = []
    for _ in range(200):  # the workers ship their buffers every LOG_FLUSH_INTERVAL_MS
        events = [e for e in shipped_log_events(redis_url) if e["job_id"] == str(job_id)]
        finished = [e for e in events if e["step"] == "finalize"]
        if finished:
            break
        await asyncio.sleep(0.05)
    assert finished, "the job's finalize event was not shipped"
    return [parse_produced(e["details"]) for e in events]


def _content_requests(fake: FakeLLM) -> list[dict[str, object]]:
    return [r for r in fake.requests() if r["schema"] in CONTENT_SCHEMAS]


async def test_a_submitted_job_completes_with_valid_content(
    worker: WorkerProcess, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery, redis_url: str
) -> None:
    job_id = await submit_job(db, celery_client, make_request(goal="Learn Rust for embedded work"))
    job = await wait_for_job(db, job_id, DONE, workers=[worker])
    assert job.status is JobStatus.completed
    assert job.title

    results = await _results(db, job_id)
    assert len(results) == 4 * 3
    assert Counter(kind for _, kind, _ in results) == dict.fromkeys(ContentKind, 4)
    for _, kind, result in results:
        assert result.version == 1
        STORED_CONTENT_MODELS[kind].model_validate(result.body)

    requests = fake.requests()
    assert len(requests) == 2 + 12
    async with db.sessions() as s:
        calls = (
            await s.execute(
                select(func.count(), func.sum(LLMCall.prompt_tokens)).where(
                    LLMCall.job_id == job_id
                )
            )
        ).one()
    assert job.llm_calls == calls[0] == 14
    assert job.prompt_tokens == calls[1] > 0

    events = [e.data.model_dump(mode="json") for e in progress_events(redis_url, job_id)]
    types = [e.type for e in progress_events(redis_url, job_id)]
    assert types[-1] is ProgressType.completed
    assert events[-1]["status"] == "completed"
    assert events[-1]["failed_items"] == []
    assert events[-1]["progress"] == {
        "total": 12, "done": 12, "failed": 0, "pending": 0, "cancelled": 0
    }  # fmt: skip
    statuses = [e["status"] for e, t in zip(events, types, strict=True) if t is ProgressType.status]
    assert statuses == ["planning", "generating"]
    items = [e for e, t in zip(events, types, strict=True) if t is ProgressType.item]
    assert len(items) == 12
    assert {i["status"] for i in items} == {"succeeded"}
    # Items saved together still count one by one: every event its own count.
    assert sorted(i["progress"]["done"] for i in items) == list(range(1, 13))
    steps = [e["step"] for e, t in zip(events, types, strict=True) if t is ProgressType.step]
    assert steps[:2] == ["intent_analysis", "curriculum_design"]

    logged = await _job_log_details(redis_url, job_id)
    assert {"step_started", "step_finished", "llm_call", "plan_stored"} <= {d.kind for d in logged}
    assert [d.model_dump(mode="json") for d in logged if isinstance(d, JobFinishedDetails)] == [
        JobFinishedDetails(
            status=JobStatus.completed,
            failed_items=[],
            progress=Progress(total=12, done=12, failed=0, pending=0, cancelled=0),
        ).model_dump(mode="json")
    ]


async def test_review_feedback_revises_then_approval_generates(
    worker: WorkerProcess, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery, redis_url: str
) -> None:
    job_id = await submit_job(db, celery_client, make_request(review=True))
    job = await wait_for_job(db, job_id, {JobStatus.awaiting_review, *DONE}, workers=[worker])
    assert job.status is JobStatus.awaiting_review
    async with db.sessions() as s:
        first = await latest_review_round(s, job_id)
    assert first is not None
    assert (first.round, first.decision) == (1, ReviewDecision.pending)
    assert not await _results(db, job_id)
    assert any(e.type is ProgressType.review_required for e in progress_events(redis_url, job_id))

    async with db.transaction() as s:
        assert await jobs.request_changes(s, job_id, first.id, "More hands-on projects, please")
    await asyncio.to_thread(contracts.send_apply_review, celery_client, job_id, first.id)
    deadline = time.monotonic() + 30
    second = first
    while second.round == 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        async with db.sessions() as s:
            second = await latest_review_round(s, job_id) or first
    assert second.round == 2
    job = await wait_for_job(db, job_id, {JobStatus.awaiting_review}, workers=[worker])
    assert job.framework_round == 2
    assert [r["schema"] for r in fake.requests()] == ["IntentAnalysis", "Framework", "Framework"]

    async with db.transaction() as s:
        assert await jobs.approve_review(s, job_id, second.id)
    await asyncio.to_thread(contracts.send_apply_review, celery_client, job_id, second.id)
    job = await wait_for_job(db, job_id, DONE, workers=[worker])
    assert job.status is JobStatus.completed
    assert len(await _results(db, job_id)) == 12
    reviews = [
        d.round
        for d in await _job_log_details(redis_url, job_id)
        if isinstance(d, PlanReadyForReviewDetails)
    ]
    assert reviews == [1, 2]


async def test_transient_faults_are_retried_within_the_caps(
    worker: WorkerProcess, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery
) -> None:
    fake.configure(
        rules=[
            FaultRule(fault=FaultKind.rate_limit, match_schema="Tutorial", times=2).model_dump(),
            FaultRule(fault=FaultKind.timeout, match_schema="ResourceList", times=1).model_dump(),
            # More 500s than the SDK retries one call: a task-level attempt follows.
            FaultRule(fault=FaultKind.server_error, match_schema="Quiz", times=4).model_dump(),
        ]
    )
    job_id = await submit_job(db, celery_client)
    job = await wait_for_job(db, job_id, DONE, workers=[worker])
    assert job.status is JobStatus.completed

    requests = _content_requests(fake)
    faults = Counter(r["fault"] for r in requests)
    assert faults["rate_limit"] == 2
    assert faults["timeout"] == 1
    assert faults["server_error"] == 4
    assert any(int(r["retry_count"]) > 0 for r in requests)  # type: ignore[call-overload]
    per_item = Counter((r["schema"], r["concept_id"]) for r in requests)
    assert len(per_item) == 12
    assert max(per_item.values()) <= (1 + SDK_RETRIES) * MAX_ATTEMPTS
    results = await _results(db, job_id)
    assert [r.version for _, _, r in results] == [1] * 12


async def test_permanent_failures_give_partial_failure_then_retry_completes(
    worker: WorkerProcess, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery, redis_url: str
) -> None:
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
    broken = keys[1]
    fake.configure(
        rules=[
            FaultRule(
                fault=FaultKind.invalid,
                match_schema="Quiz",
                match_prompt=f"Concept id: {broken}\n",
                times=None,
            ).model_dump()
        ]
    )
    async with db.transaction() as s:
        assert await jobs.approve_review(s, job_id, round_.id)
    await asyncio.to_thread(contracts.send_apply_review, celery_client, job_id, round_.id)
    job = await wait_for_job(db, job_id, DONE, workers=[worker])

    assert job.status is JobStatus.partial_failure
    assert job.error == f"1 item(s) failed: {broken}/quiz"
    async with db.sessions() as s:
        failed = await jobs.failed_items(s, job_id)
    assert [(f.concept_key, f.kind) for f in failed] == [(broken, ContentKind.quiz)]
    broken_calls = [
        r for r in fake.requests() if r["schema"] == "Quiz" and r["concept_id"] == broken
    ]
    assert len(broken_calls) == MAX_ATTEMPTS  # invalid output: task attempts, no SDK retry
    final = progress_events(redis_url, job_id)[-1]
    assert final.type is ProgressType.completed
    data = final.data.model_dump(mode="json")
    assert data["status"] == "partial_failure"
    assert [(f["concept_key"], f["kind"]) for f in data["failed_items"]] == [(broken, "quiz")]

    fake.configure(rules=[])
    async with db.transaction() as s:
        assert await jobs.requeue_failed_items(s, job_id) == 1
    await asyncio.to_thread(contracts.send_retry_failed, celery_client, job_id)
    job = await wait_for_job(db, job_id, DONE, workers=[worker])
    assert job.status is JobStatus.completed
    assert job.error is None
    results = await _results(db, job_id)
    assert len(results) == 12
    quiz = next(r for key, kind, r in results if key == broken and kind is ContentKind.quiz)
    STORED_CONTENT_MODELS[ContentKind.quiz].model_validate(quiz.body)


async def test_regeneration_writes_a_new_version_and_keeps_the_old(
    worker: WorkerProcess, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery
) -> None:
    job_id = await submit_job(db, celery_client)
    await wait_for_job(db, job_id, {JobStatus.completed}, workers=[worker])
    async with db.sessions() as s:
        concept = (
            await s.execute(
                select(Concept).where(Concept.job_id == job_id).order_by(Concept.position).limit(1)
            )
        ).scalar_one()
    async with db.transaction() as s:
        n = await jobs.requeue_concept_items(
            s, job_id, concept.id, kinds=[ContentKind.tutorial], instructions="Use more diagrams"
        )
    assert n == 1
    fake.reset()
    await asyncio.to_thread(contracts.send_regenerate_concept, celery_client, job_id, concept.id)
    job = await wait_for_job(db, job_id, DONE, workers=[worker])
    assert job.status is JobStatus.completed
    assert [(r["schema"], r["concept_id"]) for r in fake.requests()] == [("Tutorial", concept.key)]
    async with db.sessions() as s:
        item = (
            await s.execute(
                select(ContentItem).where(
                    ContentItem.concept_id == concept.id, ContentItem.kind == ContentKind.tutorial
                )
            )
        ).scalar_one()
        versions = await result_versions(s, item.id)
    assert [(v.version, v.instructions) for v in versions] == [(1, None), (2, "Use more diagrams")]
    assert item.version == 2
    assert item.instructions is None


async def test_cancel_stops_spending(
    worker: WorkerProcess, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery, redis_url: str
) -> None:
    fake.configure(latency_ms=400.0, concepts=8)
    job_id = await submit_job(db, celery_client)
    await wait_for_job(db, job_id, {JobStatus.generating}, workers=[worker])
    # What the API does: cancel the rows (and announce the end, which the API's tests
    # check), then send the task.
    async with db.transaction() as s:
        assert await jobs.cancel_job(s, job_id)
    await asyncio.to_thread(contracts.send_cancel_job, celery_client, job_id)
    cancelled_at = time.time()
    # Calls already sent finish; none starts later than one status read after the cancel.
    await asyncio.sleep(1.5)
    late = [r for r in fake.requests() if float(r["ts"]) > cancelled_at + 0.5]
    assert late == []
    async with db.sessions() as s:
        statuses = set(
            (
                await s.execute(select(ContentItem.status).where(ContentItem.job_id == job_id))
            ).scalars()
        )
        job = await jobs.get_job(s, job_id)
    assert job is not None
    assert job.status is JobStatus.cancelled
    assert statuses <= {ItemStatus.cancelled, ItemStatus.succeeded}
    assert ItemStatus.cancelled in statuses


async def test_lost_messages_are_recovered_by_the_reconciler(
    worker: WorkerProcess, fake: FakeLLM, db: ProcessDatabase, celery_client: Celery, redis_url: str
) -> None:
    fake.configure(latency_ms=300.0, concepts=8)
    job_id = await submit_job(db, celery_client)
    await wait_for_job(db, job_id, {JobStatus.generating}, workers=[worker])
    redis = SyncRedis.from_url(redis_url)
    try:
        for _ in range(1000):
            if redis.llen(CONTENT_QUEUE):
                break
            await asyncio.sleep(0.01)
        # Redis drops the messages still waiting: 8 concepts / 2 per task, 2 being worked on.
        assert redis.delete(CONTENT_QUEUE) == 1
    finally:
        redis.close()
    job = await wait_for_job(db, job_id, DONE, within_s=60, workers=[worker])
    assert job.status is JobStatus.completed
    assert len(await _results(db, job_id)) == 8 * 3
    assert "reconciler re-sent work" in worker.log()
