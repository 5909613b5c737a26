"""Celery tasks of the content worker, one per contract in ``roadmap_core.contracts``.

Every payload is validated on entry with its contract model (ids only). The
task id is the claim token: a message redelivered after its process died (or
handed back on shutdown) carries the same id and resumes its own claims.
Fan-out messages are sent from the task's thread after the coroutine (and its
transactions) finished; the reconciler re-sends whatever a failed send lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from celery import Task
from sqlalchemy import select

from roadmap_core import contracts
from roadmap_core.celery_app import CONTENT_SOFT_TIME_LIMIT
from roadmap_core.domain import ItemStatus, JobStatus, LogCategory, ReviewDecision
from roadmap_core.logdetails import JobCancelledDetails, RetryStartedDetails
from roadmap_core.logship import emit
from roadmap_db.models import ReviewRound
from roadmap_db.repositories.item_results import concepts_with_items_in
from roadmap_db.repositories.job_lifecycle import cancel_job as cancel_job_rows
from roadmap_db.repositories.job_lifecycle import get_job
from roadmap_worker_content import chat, generation, planning
from roadmap_worker_content.app import celery_app
from roadmap_worker_content.events import progress_now
from roadmap_worker_content.fanout import send_concept_batches
from roadmap_worker_content.reconciler import LeaderLock, reconcile_once
from roadmap_worker_content.runtime import Runtime, runtime

log = logging.getLogger(__name__)

# Stop starting LLM calls this long before the soft time limit.
DEADLINE_MARGIN_S = 30.0


def _token(task: Task[Any, Any]) -> str:
    task_id = task.request.id
    if not task_id:
        raise RuntimeError("a content task needs a task id (it is the claim token)")
    return str(task_id)


def _deadline() -> float:
    return time.monotonic() + CONTENT_SOFT_TIME_LIMIT - DEADLINE_MARGIN_S


def _fan_out(rt: Runtime, job_id: uuid.UUID, concept_ids: list[uuid.UUID]) -> None:
    if concept_ids:
        send_concept_batches(celery_app, job_id, concept_ids, rt.settings.concept_batch_size)


async def _queued_concepts(rt: Runtime, job_id: uuid.UUID) -> list[uuid.UUID]:
    async with rt.db.sessions() as session:
        job = await get_job(session, job_id)
        if job is None or job.status is not JobStatus.generating:
            return []
        return await concepts_with_items_in(session, job_id, [ItemStatus.queued])


def _plan(task: Task[Any, Any], job_id: uuid.UUID) -> None:
    rt = runtime()
    outcome = rt.run(planning.plan(rt, job_id, _token(task)))
    _fan_out(rt, job_id, outcome.fan_out)


def _generate(task: Task[Any, Any], job_id: uuid.UUID, concept_ids: list[uuid.UUID]) -> None:
    rt = runtime()
    outcome = rt.run(
        generation.generate(rt, job_id, concept_ids, _token(task), deadline=_deadline())
    )
    _fan_out(rt, job_id, outcome.resend)


@celery_app.task(name=contracts.PLAN_JOB.name, bind=True)
def plan_job(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    _plan(self, contracts.PlanJob.model_validate(payload).job_id)


@celery_app.task(name=contracts.GENERATE_CONCEPTS.name, bind=True)
def generate_concepts(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    p = contracts.GenerateConcepts.model_validate(payload)
    _generate(self, p.job_id, list(p.concept_ids))


@celery_app.task(name=contracts.REGENERATE_CONCEPT.name, bind=True)
def regenerate_concept(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    p = contracts.RegenerateConcept.model_validate(payload)
    _generate(self, p.job_id, [p.concept_id])


@celery_app.task(name=contracts.APPLY_REVIEW.name, bind=True)
def apply_review(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    p = contracts.ApplyReview.model_validate(payload)
    rt = runtime()

    async def decision() -> ReviewDecision | None:
        async with rt.db.sessions() as session:
            return (
                await session.execute(
                    select(ReviewRound.decision).where(
                        ReviewRound.id == p.round_id, ReviewRound.job_id == p.job_id
                    )
                )
            ).scalar_one_or_none()

    match rt.run(decision()):
        case ReviewDecision.changes_requested:
            _plan(self, p.job_id)
        case ReviewDecision.approved:
            _fan_out(rt, p.job_id, rt.run(_queued_concepts(rt, p.job_id)))
        case other:
            log.info("apply_review for job %s: round is %s, nothing to do", p.job_id, other)


@celery_app.task(name=contracts.RETRY_FAILED.name, bind=True)
def retry_failed(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    p = contracts.RetryFailed.model_validate(payload)
    rt = runtime()
    concepts = rt.run(_queued_concepts(rt, p.job_id))
    emit(
        "retrying failed items",
        job_id=p.job_id,
        step="retry",
        details=RetryStartedDetails(concepts=len(concepts)),
    )
    _fan_out(rt, p.job_id, concepts)


@celery_app.task(name=contracts.CANCEL_JOB.name, bind=True)
def cancel_job(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    p = contracts.CancelJob.model_validate(payload)
    rt = runtime()

    async def cancel() -> None:
        async with rt.db.transaction() as session:
            # Normally the API already did this (and published the events); repeating it is
            # a no-op, and only a cancellation made here is announced here.
            cancelled_here = await cancel_job_rows(session, p.job_id)
            job = await get_job(session, p.job_id)
            progress = await progress_now(session, p.job_id)
        if job is not None and job.status is JobStatus.cancelled:
            emit(
                "job cancelled",
                job_id=p.job_id,
                category=LogCategory.workflow,
                step="cancel",
                details=JobCancelledDetails(),
            )
            if cancelled_here:
                await rt.progress.cancelled(p.job_id, progress)

    rt.run(cancel())


@celery_app.task(name=contracts.RECONCILE.name, bind=True)
def reconcile(self: Task[Any, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """One reconciler pass now, unless another reconciler is active (then it is skipped)."""
    contracts.Reconcile.model_validate(payload)
    rt = runtime()

    async def run() -> dict[str, Any]:
        lock = LeaderLock(rt.db.engine)
        if not await lock.acquire():
            return {"skipped": "another reconciler is active"}
        try:
            report = await reconcile_once(rt.db, rt.progress, celery_app, rt.settings)
        finally:
            await lock.release()
        return report.as_dict()

    return rt.run(run())


@celery_app.task(name=contracts.ANSWER_CHAT.name, bind=True)
def answer_chat(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    p = contracts.AnswerChat.model_validate(payload)
    rt = runtime()
    rt.run(chat.answer(rt, p.job_id, p.message_id, _token(self)))
