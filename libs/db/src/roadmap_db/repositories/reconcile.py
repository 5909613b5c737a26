"""Reconciler queries: find work whose message was lost or whose worker died.

Each query also stamps what it found (``enqueued_at`` on jobs, ``updated_at``
on items) in the same statement, so the same row is re-sent at most once per
stale age, however often the reconciler runs. Rows locked by a worker right
now are skipped (``SKIP LOCKED``), not waited for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import ItemStatus, JobStatus, ReviewDecision
from roadmap_db.models import ContentItem, ReviewRound, RoadmapJob


@dataclass(frozen=True, slots=True)
class JobResend:
    job_id: uuid.UUID
    # Set when the latest review round asked for changes: resend ``apply_review``.
    revision_round_id: uuid.UUID | None


async def stale_planning_jobs(
    session: AsyncSession, *, stale_age: timedelta, lease: timedelta, limit: int
) -> list[JobResend]:
    """Jobs ``queued`` longer than ``stale_age`` or ``planning`` with an expired lease."""
    now = func.now()
    last_sent = func.coalesce(RoadmapJob.enqueued_at, RoadmapJob.created_at)
    candidates = (
        select(RoadmapJob.id)
        .where(
            RoadmapJob.deleted_at.is_(None),
            last_sent < now - stale_age,
            or_(
                RoadmapJob.status == JobStatus.queued,
                and_(
                    RoadmapJob.status == JobStatus.planning,
                    RoadmapJob.heartbeat_at < now - lease,
                ),
            ),
        )
        .order_by(RoadmapJob.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    job_ids = list(
        (
            await session.execute(
                update(RoadmapJob)
                .where(RoadmapJob.id.in_(candidates.scalar_subquery()))
                .values(enqueued_at=now)
                .returning(RoadmapJob.id)
            )
        ).scalars()
    )
    if not job_ids:
        return []
    latest = (
        select(ReviewRound.job_id, ReviewRound.id, ReviewRound.decision)
        .where(ReviewRound.job_id.in_(job_ids))
        .ext(distinct_on(ReviewRound.job_id))
        .order_by(ReviewRound.job_id, ReviewRound.round.desc())
    )
    revision = {
        job_id: round_id
        for job_id, round_id, decision in (await session.execute(latest)).all()
        if decision is ReviewDecision.changes_requested
    }
    return [JobResend(job_id, revision.get(job_id)) for job_id in job_ids]


async def stale_item_concepts(
    session: AsyncSession, *, stale_age: timedelta, lease: timedelta, limit: int
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Concepts (by job) of ``generating`` jobs with items lost in transit or abandoned.

    An item is lost when ``queued`` for longer than ``stale_age``; abandoned
    when ``running`` with an expired lease (its worker died).
    """
    now = func.now()
    candidates = (
        select(ContentItem.id)
        .join(RoadmapJob, RoadmapJob.id == ContentItem.job_id)
        .where(
            RoadmapJob.status == JobStatus.generating,
            RoadmapJob.deleted_at.is_(None),
            ContentItem.updated_at < now - stale_age,
            or_(
                ContentItem.status == ItemStatus.queued,
                and_(
                    ContentItem.status == ItemStatus.running,
                    ContentItem.claimed_at < now - lease,
                ),
            ),
        )
        .order_by(ContentItem.updated_at)
        .limit(limit)
        .with_for_update(of=ContentItem, skip_locked=True)
    )
    rows = await session.execute(
        update(ContentItem)
        .where(ContentItem.id.in_(candidates.scalar_subquery()))
        .values(updated_at=now)
        .returning(ContentItem.job_id, ContentItem.concept_id)
    )
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    for job_id, concept_id in rows.all():
        found.setdefault(job_id, set()).add(concept_id)
    return {job_id: sorted(concepts) for job_id, concepts in found.items()}


async def finishable_jobs(
    session: AsyncSession, *, grace: timedelta, limit: int
) -> list[uuid.UUID]:
    """``generating`` jobs with no unfinished item left that nobody finalised."""
    open_items = (
        select(ContentItem.id)
        .where(
            ContentItem.job_id == RoadmapJob.id,
            ContentItem.status.in_((ItemStatus.pending, ItemStatus.queued, ItemStatus.running)),
        )
        .exists()
    )
    rows = await session.execute(
        select(RoadmapJob.id)
        .where(
            RoadmapJob.status == JobStatus.generating,
            RoadmapJob.deleted_at.is_(None),
            RoadmapJob.updated_at <= func.now() - grace,
            ~open_items,
        )
        .order_by(RoadmapJob.updated_at)
        .limit(limit)
    )
    return list(rows.scalars())
