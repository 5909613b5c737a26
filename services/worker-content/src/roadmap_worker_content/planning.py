"""Planning a job (and revising its framework after review feedback).

``queued`` → claim (``planning``, attempts+1) → intent → curriculum → validation
and bounded repair → ``awaiting_review`` (framework stored, items ``pending``,
review round opened) or ``generating`` (items ``queued``; the caller fans out).
If the latest review round asked for changes, the framework is revised with the
feedback instead of planned from scratch.

A retryable LLM failure re-claims the job under the same message (attempts+1)
after a backoff; when the attempts are used up, or the error is permanent, or
the framework is still invalid after the repair rounds, the job ends ``failed``
with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

from pydantic import ValidationError

from roadmap_core.domain import (
    Framework,
    IntentAnalysis,
    ItemStatus,
    JobStatus,
    JobStep,
    LogCategory,
    LogLevel,
    ReviewDecision,
    RoadmapRequest,
)
from roadmap_core.llm.errors import LLMError
from roadmap_core.logdetails import (
    PlanFailedDetails,
    PlanReadyForReviewDetails,
    PlanStoredDetails,
)
from roadmap_core.logship import emit
from roadmap_core.pipeline import (
    PlanLimits,
    PlanResult,
    analyze_intent,
    design_curriculum,
    revise_framework,
    validate_and_repair,
)
from roadmap_core.progress import ReviewRequiredEvent
from roadmap_db.models import ReviewRound
from roadmap_db.repositories import job_lifecycle as jobs
from roadmap_db.repositories.claims import claim_job
from roadmap_db.repositories.frameworks import (
    add_review_round,
    latest_review_round,
    load_framework,
    replace_framework,
)
from roadmap_worker_content.events import progress_now
from roadmap_worker_content.leases import renewing_lease
from roadmap_worker_content.observers import JobGone, PlanningObserver
from roadmap_worker_content.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PlanOutcome:
    status: JobStatus | None = None
    # Concepts whose items are queued now: the caller sends them out.
    fan_out: list[uuid.UUID] = field(default_factory=list)


def backoff_s(attempt: int, retry_after_s: float | None, lease_s: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``; below half the lease, so the
    claim (not renewed while waiting) never lapses."""
    wait = retry_after_s if retry_after_s is not None else 0.5 * 2 ** max(0, attempt - 1)
    return max(0.0, min(wait, 20.0, lease_s / 2))


async def plan(rt: Runtime, job_id: uuid.UUID, token: str) -> PlanOutcome:
    settings = rt.settings
    while True:
        async with rt.db.transaction() as session:
            round_ = await latest_review_round(session, job_id)
            revising = round_ is not None and round_.decision is ReviewDecision.changes_requested
            job = await claim_job(
                session,
                job_id,
                from_statuses=[JobStatus.queued],
                to_status=JobStatus.planning,
                step=JobStep.revision if revising else JobStep.intent_analysis,
                max_attempts=settings.llm_task_max_attempts,
                lease=settings.item_lease,
                token=token,
            )
            exhausted = job is None and await jobs.fail_exhausted_job(
                session,
                job_id,
                max_attempts=settings.llm_task_max_attempts,
                lease=settings.item_lease,
                token=token,
            )
        if job is None:
            if exhausted:
                await _announce_failure(rt, job_id)
                return PlanOutcome(JobStatus.failed)
            return PlanOutcome()
        await rt.progress.status(job_id, JobStatus.planning, job.current_step)
        try:
            request = RoadmapRequest.model_validate(job.request)
        except ValidationError as exc:
            return await _fail(rt, job_id, token, f"the stored request is invalid: {exc}")
        observer = PlanningObserver(job_id, token, rt.db, rt.progress, job.current_step)
        try:
            async with renewing_lease(
                rt.db, token, interval_s=settings.lease_renew_s, job_id=job_id
            ):
                if revising:
                    assert round_ is not None
                    result = await _revise(rt, job_id, request, round_, observer)
                else:
                    intent = IntentAnalysis.model_validate(job.intent) if job.intent else None
                    result = await _plan(rt, job_id, token, request, intent, observer)
        except JobGone:
            return PlanOutcome()
        except LLMError as exc:
            if exc.retryable and job.attempts < settings.llm_task_max_attempts:
                async with rt.db.transaction() as session:
                    await jobs.record_job_error(session, job_id, token, str(exc))
                await asyncio.sleep(
                    backoff_s(job.attempts, exc.retry_after_s, settings.item_lease_s)
                )
                continue
            return await _fail(rt, job_id, token, f"planning failed: {exc}")
        if not result.ok:
            reasons = "; ".join(result.errors)
            return await _fail(
                rt,
                job_id,
                token,
                f"the framework is still invalid after {result.repair_rounds} repair"
                f" round(s): {reasons}",
            )
        return await _store(rt, job_id, token, request, result)


async def _plan(
    rt: Runtime,
    job_id: uuid.UUID,
    token: str,
    request: RoadmapRequest,
    intent: IntentAnalysis | None,
    observer: PlanningObserver,
) -> PlanResult:
    limits = PlanLimits.from_settings(rt.settings)
    if intent is None:
        intent = await analyze_intent(rt.llm, request, job_id=job_id, observer=observer)
        # Stored with the next step, so a retried attempt pays only for the steps after it.
        observer.pending_intent = intent.model_dump(mode="json")
    framework = await design_curriculum(
        rt.llm, request, intent, limits, job_id=job_id, observer=observer
    )
    return await validate_and_repair(
        rt.llm, request, framework, limits, intent=intent, job_id=job_id, observer=observer
    )


async def _revise(
    rt: Runtime,
    job_id: uuid.UUID,
    request: RoadmapRequest,
    round_: ReviewRound,
    observer: PlanningObserver,
) -> PlanResult:
    async with rt.db.sessions() as session:
        current = await load_framework(session, job_id)
    framework = current or Framework.model_validate(round_.framework)
    return await revise_framework(
        rt.llm,
        request,
        framework,
        round_.feedback or "",
        PlanLimits.from_settings(rt.settings),
        job_id=job_id,
        observer=observer,
    )


async def _store(
    rt: Runtime,
    job_id: uuid.UUID,
    token: str,
    request: RoadmapRequest,
    result: PlanResult,
) -> PlanOutcome:
    framework = result.framework
    review = request.review
    async with rt.db.transaction() as session:
        to_status = JobStatus.awaiting_review if review else JobStatus.generating
        if not await jobs.finish_planning(
            session,
            job_id,
            token,
            to_status=to_status,
            title=framework.title,
            summary=framework.summary,
        ):
            return PlanOutcome()
        concept_ids = await replace_framework(
            session,
            job_id,
            framework,
            item_status=ItemStatus.pending if review else ItemStatus.queued,
        )
        round_ = await add_review_round(session, job_id, framework) if review else None
    if round_ is not None:
        emit(
            "framework ready for review",
            job_id=job_id,
            category=LogCategory.review,
            step=JobStep.awaiting_review.value,
            details=PlanReadyForReviewDetails(
                concepts=len(concept_ids), repair_rounds=result.repair_rounds, round=round_.round
            ),
        )
        await rt.progress.status(job_id, JobStatus.awaiting_review, JobStep.awaiting_review)
        await rt.progress.publish(
            job_id,
            ReviewRequiredEvent(round_id=round_.id, round=round_.round, framework=framework),
        )
        return PlanOutcome(JobStatus.awaiting_review)
    emit(
        "framework stored; generating content",
        job_id=job_id,
        step="plan",
        details=PlanStoredDetails(concepts=len(concept_ids), repair_rounds=result.repair_rounds),
    )
    await rt.progress.status(job_id, JobStatus.generating, JobStep.content_generation)
    return PlanOutcome(JobStatus.generating, concept_ids)


async def _fail(rt: Runtime, job_id: uuid.UUID, token: str, error: str) -> PlanOutcome:
    async with rt.db.transaction() as session:
        failed = await jobs.fail_job(session, job_id, error, token=token)
        progress = await progress_now(session, job_id)
    if not failed:
        return PlanOutcome()
    emit(error, job_id=job_id, level=LogLevel.error, step="plan", details=PlanFailedDetails())
    await rt.progress.failed(job_id, error, progress)
    return PlanOutcome(JobStatus.failed)


async def _announce_failure(rt: Runtime, job_id: uuid.UUID) -> None:
    async with rt.db.sessions() as session:
        job = await jobs.get_job(session, job_id)
        progress = await progress_now(session, job_id)
    error = (job.error if job else None) or "planning failed"
    emit(error, job_id=job_id, level=LogLevel.error, step="plan", details=PlanFailedDetails())
    await rt.progress.failed(job_id, error, progress)
