"""Job transitions of docs/jobs.md: planning steps, review decisions, finalisation, retry, cancel.

Every transition is one conditional statement (or a short transaction under the
job row's lock), so two processes racing on the same job cannot both win, and a
worker that lost its claim (or whose job was cancelled) changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import (
    ACTIVE_JOB_STATUSES,
    ContentKind,
    ItemStatus,
    JobStatus,
    JobStep,
    ReviewDecision,
)
from roadmap_db.models import Concept, ContentItem, ReviewRound, RoadmapJob

OPEN_ITEM_STATUSES = (ItemStatus.pending, ItemStatus.queued, ItemStatus.running)
FINISHED_ITEM_STATUSES = (ItemStatus.succeeded, ItemStatus.failed)


@dataclass(frozen=True, slots=True)
class FailedItem:
    item_id: uuid.UUID
    concept_id: uuid.UUID
    concept_key: str
    kind: ContentKind
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": str(self.item_id),
            "concept_id": str(self.concept_id),
            "concept_key": self.concept_key,
            "kind": self.kind.value,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Finalized:
    status: JobStatus
    failed_items: list[FailedItem]
    succeeded: int


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> RoadmapJob | None:
    """The job row, or ``None`` if it does not exist or was deleted."""
    return (
        await session.execute(
            select(RoadmapJob).where(RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None))
        )
    ).scalar_one_or_none()


async def get_job_for_claims(session: AsyncSession, job_id: uuid.UUID) -> RoadmapJob | None:
    """:func:`get_job`, the row locked ``FOR KEY SHARE`` until the transaction ends: what a
    worker takes before it claims or fails any of the job's items.

    The API's routes that change a job's items (cancel, delete, retry, regenerate, review)
    lock the job row ``FOR UPDATE`` first, then update its items. A claim that went
    straight to the items could hold some of them while a cancel held others, each
    waiting for the other's (two multi-row UPDATEs over the same rows, in different
    orders): PostgreSQL ended one as a deadlock after a second, and the cancel answered
    503. With the job row first, both lock in the same order. ``FOR KEY SHARE`` conflicts
    with ``FOR UPDATE`` only: other claims and the workers' own updates of the job (its
    totals, item saves) go on.
    """
    return (
        await session.execute(
            select(RoadmapJob)
            .where(RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None))
            .with_for_update(read=True, key_share=True)
        )
    ).scalar_one_or_none()


async def job_status(session: AsyncSession, job_id: uuid.UUID) -> JobStatus | None:
    """Current status (``None`` for a missing or deleted job): the cheap pre-call check."""
    return (
        await session.execute(
            select(RoadmapJob.status).where(
                RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None)
            )
        )
    ).scalar_one_or_none()


def _held(job_id: uuid.UUID, token: str) -> tuple[Any, ...]:
    return (
        RoadmapJob.id == job_id,
        RoadmapJob.status == JobStatus.planning,
        RoadmapJob.claim_token == token,
        RoadmapJob.deleted_at.is_(None),
    )


async def set_planning_step(
    session: AsyncSession,
    job_id: uuid.UUID,
    token: str,
    step: JobStep,
    *,
    intent: dict[str, Any] | None = None,
) -> bool:
    """Record the planning step (and renew the lease, and keep ``intent`` when given)
    while ``token`` holds the job."""
    values: dict[str, Any] = {
        "current_step": step,
        "heartbeat_at": func.now(),
        "updated_at": func.now(),
    }
    if intent is not None:
        values["intent"] = intent
    result = await session.execute(
        update(RoadmapJob)
        .where(*_held(job_id, token))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish_planning(
    session: AsyncSession,
    job_id: uuid.UUID,
    token: str,
    *,
    to_status: JobStatus,
    title: str,
    summary: str,
) -> bool:
    """Leave ``planning`` for ``awaiting_review`` or ``generating``.

    The attempt counter restarts: the next planning round (a revision after
    feedback) gets a budget of its own.
    """
    step = (
        JobStep.awaiting_review
        if to_status is JobStatus.awaiting_review
        else JobStep.content_generation
    )
    result = await session.execute(
        update(RoadmapJob)
        .where(*_held(job_id, token))
        .values(
            status=to_status,
            current_step=step,
            title=title[:200],
            summary=summary,
            framework_round=RoadmapJob.framework_round + 1,
            attempts=0,
            claim_token=None,
            error=None,
            updated_at=func.now(),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fail_job(
    session: AsyncSession, job_id: uuid.UUID, error: str, *, token: str | None = None
) -> bool:
    """Move an active job to ``failed`` (only while ``token`` holds it, when given)."""
    conditions: list[Any] = [
        RoadmapJob.id == job_id,
        RoadmapJob.deleted_at.is_(None),
        RoadmapJob.status.in_(ACTIVE_JOB_STATUSES),
    ]
    if token is not None:
        conditions.append(RoadmapJob.claim_token == token)
    result = await session.execute(
        update(RoadmapJob)
        .where(*conditions)
        .values(
            status=JobStatus.failed,
            error=error[:4000],
            claim_token=None,
            finished_at=func.now(),
            updated_at=func.now(),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fail_exhausted_job(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    max_attempts: int,
    lease: timedelta,
    token: str | None = None,
) -> bool:
    """Fail a job whose planning used every attempt and that nobody holds any more."""
    now = func.now()
    free = or_(
        RoadmapJob.status == JobStatus.queued,
        and_(RoadmapJob.status == JobStatus.planning, RoadmapJob.heartbeat_at < now - lease),
    )
    if token is not None:
        free = or_(
            free, and_(RoadmapJob.status == JobStatus.planning, RoadmapJob.claim_token == token)
        )
    result = await session.execute(
        update(RoadmapJob)
        .where(
            RoadmapJob.id == job_id,
            RoadmapJob.deleted_at.is_(None),
            RoadmapJob.attempts >= max_attempts,
            free,
        )
        .values(
            status=JobStatus.failed,
            error=func.coalesce(RoadmapJob.error + "; ", "")
            + f"planning gave up after {max_attempts} attempts",
            claim_token=None,
            finished_at=now,
            updated_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_job_error(
    session: AsyncSession, job_id: uuid.UUID, token: str, error: str
) -> None:
    """Note the last planning error (kept if the attempts run out)."""
    await session.execute(
        update(RoadmapJob).where(*_held(job_id, token)).values(error=error[:4000])
    )


async def failed_items(session: AsyncSession, job_id: uuid.UUID) -> list[FailedItem]:
    rows = await session.execute(
        select(
            ContentItem.id, ContentItem.concept_id, Concept.key, ContentItem.kind, ContentItem.error
        )
        .join(Concept, Concept.id == ContentItem.concept_id)
        .where(ContentItem.job_id == job_id, ContentItem.status == ItemStatus.failed)
        .order_by(Concept.position, ContentItem.kind)
    )
    return [FailedItem(*row) for row in rows.all()]


async def finalize_job(session: AsyncSession, job_id: uuid.UUID) -> Finalized | None:
    """Finish a ``generating`` job whose items are all done; ``None`` if it is not time yet.

    Runs under ``SELECT … FOR UPDATE`` on the job row, so of the workers that
    finish items at the same moment exactly one finalises. The job becomes
    ``completed``, or ``partial_failure`` whose error names every failed item.
    """
    status = (
        await session.execute(
            select(RoadmapJob.status)
            .where(RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if status is not JobStatus.generating:
        return None
    counts = dict(
        (
            await session.execute(
                select(ContentItem.status, func.count())
                .where(ContentItem.job_id == job_id)
                .group_by(ContentItem.status)
            )
        ).all()
    )
    if any(counts.get(s, 0) for s in OPEN_ITEM_STATUSES):
        return None
    failed = await failed_items(session, job_id)
    final = JobStatus.partial_failure if failed else JobStatus.completed
    error = None
    if failed:
        names = ", ".join(f"{f.concept_key}/{f.kind.value}" for f in failed[:50])
        more = f" and {len(failed) - 50} more" if len(failed) > 50 else ""
        error = f"{len(failed)} item(s) failed: {names}{more}"
    await session.execute(
        update(RoadmapJob)
        .where(RoadmapJob.id == job_id)
        .values(
            status=final,
            current_step=JobStep.done,
            error=error,
            claim_token=None,
            finished_at=func.now(),
            updated_at=func.now(),
        )
    )
    return Finalized(final, failed, counts.get(ItemStatus.succeeded, 0))


async def cancel_job(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Cancel an active job and its unfinished items (API ``cancel``/``DELETE``)."""
    result = await session.execute(
        update(RoadmapJob)
        .where(
            RoadmapJob.id == job_id,
            RoadmapJob.deleted_at.is_(None),
            RoadmapJob.status.in_(ACTIVE_JOB_STATUSES),
        )
        .values(
            status=JobStatus.cancelled,
            claim_token=None,
            finished_at=func.now(),
            updated_at=func.now(),
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await session.execute(
        update(ContentItem)
        .where(ContentItem.job_id == job_id, ContentItem.status.in_(OPEN_ITEM_STATUSES))
        .values(status=ItemStatus.cancelled, claim_token=None, updated_at=func.now())
    )
    return True


async def approve_review(
    session: AsyncSession, job_id: uuid.UUID, round_id: uuid.UUID
) -> int | None:
    """Approve the pending round: job → ``generating``, items ``pending`` → ``queued``.

    Returns how many items were queued (``None``: nothing was pending a decision)."""
    if not await _decide(session, job_id, round_id, ReviewDecision.approved, None):
        return None
    await session.execute(
        update(RoadmapJob)
        .where(RoadmapJob.id == job_id)
        .values(
            status=JobStatus.generating,
            current_step=JobStep.content_generation,
            updated_at=func.now(),
            enqueued_at=func.now(),
        )
    )
    items = await session.execute(
        update(ContentItem)
        .where(ContentItem.job_id == job_id, ContentItem.status == ItemStatus.pending)
        .values(status=ItemStatus.queued, updated_at=func.now())
    )
    return int(items.rowcount or 0)  # type: ignore[attr-defined]


async def request_changes(
    session: AsyncSession, job_id: uuid.UUID, round_id: uuid.UUID, feedback: str
) -> bool:
    """Send the pending round back with feedback: job → ``queued`` at step ``revision``."""
    if not await _decide(session, job_id, round_id, ReviewDecision.changes_requested, feedback):
        return False
    await session.execute(
        update(RoadmapJob)
        .where(RoadmapJob.id == job_id)
        .values(
            status=JobStatus.queued,
            current_step=JobStep.revision,
            updated_at=func.now(),
            enqueued_at=func.now(),
        )
    )
    return True


async def _decide(
    session: AsyncSession,
    job_id: uuid.UUID,
    round_id: uuid.UUID,
    decision: ReviewDecision,
    feedback: str | None,
) -> bool:
    # Lock the job first: a decision and a cancel must not interleave.
    status = (
        await session.execute(
            select(RoadmapJob.status)
            .where(RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if status is not JobStatus.awaiting_review:
        return False
    result = await session.execute(
        update(ReviewRound)
        .where(
            ReviewRound.id == round_id,
            ReviewRound.job_id == job_id,
            ReviewRound.decision == ReviewDecision.pending,
        )
        .values(decision=decision, feedback=feedback, decided_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def requeue_failed_items(session: AsyncSession, job_id: uuid.UUID) -> int:
    """API ``retry``: a ``partial_failure`` job's failed items → ``queued`` with fresh attempts.

    Returns how many items were re-queued (0 when the job is not in
    ``partial_failure``; nothing changes then).
    """
    result = await session.execute(
        update(RoadmapJob)
        .where(
            RoadmapJob.id == job_id,
            RoadmapJob.deleted_at.is_(None),
            RoadmapJob.status == JobStatus.partial_failure,
        )
        .values(
            status=JobStatus.generating,
            current_step=JobStep.content_generation,
            error=None,
            finished_at=None,
            enqueued_at=func.now(),
            updated_at=func.now(),
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return 0
    items = await session.execute(
        update(ContentItem)
        .where(ContentItem.job_id == job_id, ContentItem.status == ItemStatus.failed)
        .values(
            status=ItemStatus.queued,
            attempts=0,
            claims=0,
            error=None,
            claim_token=None,
            updated_at=func.now(),
        )
    )
    return int(items.rowcount or 0)  # type: ignore[attr-defined]


REGENERATABLE_JOB_STATUSES = (JobStatus.completed, JobStatus.partial_failure, JobStatus.generating)


async def requeue_concept_items(
    session: AsyncSession,
    job_id: uuid.UUID,
    concept_id: uuid.UUID,
    *,
    kinds: Sequence[ContentKind],
    instructions: str | None,
) -> int:
    """API ``regenerate``: the concept's finished items of ``kinds`` → ``queued`` with
    ``instructions`` and fresh attempts; the job → ``generating``.

    The next successful generation stores version + 1 and keeps the old one.
    Returns how many items were re-queued (0: job or items not in a state that
    allows it; nothing changes then).
    """
    job = (
        await session.execute(
            select(RoadmapJob.status)
            .where(RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if job not in REGENERATABLE_JOB_STATUSES:
        return 0
    items = await session.execute(
        update(ContentItem)
        .where(
            ContentItem.job_id == job_id,
            ContentItem.concept_id == concept_id,
            ContentItem.kind.in_(kinds),
            ContentItem.status.in_(FINISHED_ITEM_STATUSES),
        )
        .values(
            status=ItemStatus.queued,
            attempts=0,
            claims=0,
            error=None,
            instructions=instructions,
            claim_token=None,
            updated_at=func.now(),
        )
    )
    count = int(items.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        await session.execute(
            update(RoadmapJob)
            .where(RoadmapJob.id == job_id)
            .values(
                status=JobStatus.generating,
                current_step=JobStep.content_generation,
                error=None,
                finished_at=None,
                enqueued_at=func.now(),
                updated_at=func.now(),
            )
        )
    return count
