"""Claims: conditional updates that let exactly one worker own a piece of work.

Every claim increments an attempt counter in the same statement. Work whose
counter reached the limit is never claimed again: it is marked failed instead,
so a task that keeps crashing its process cannot loop forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import ItemStatus, JobStatus, JobStep
from roadmap_db.models import ContentItem, RoadmapJob

CLAIMABLE_ITEM_STATUSES = (ItemStatus.pending, ItemStatus.queued)


async def claim_job(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    from_statuses: Sequence[JobStatus],
    to_status: JobStatus,
    step: JobStep,
    max_attempts: int,
    lease: timedelta,
) -> RoadmapJob | None:
    """Move the job into ``to_status`` if it waits in ``from_statuses`` (or its lease expired).

    Returns the claimed row, or ``None`` when someone else holds it, it moved
    on, it was deleted, or it has no attempts left.
    """
    now = func.now()
    stale = and_(RoadmapJob.status == to_status, RoadmapJob.heartbeat_at < now - lease)
    stmt = (
        update(RoadmapJob)
        .where(
            RoadmapJob.id == job_id,
            RoadmapJob.deleted_at.is_(None),
            RoadmapJob.attempts < max_attempts,
            or_(RoadmapJob.status.in_(from_statuses), stale),
        )
        .values(
            status=to_status,
            current_step=step,
            attempts=RoadmapJob.attempts + 1,
            heartbeat_at=now,
            updated_at=now,
            started_at=func.coalesce(RoadmapJob.started_at, now),
        )
        .returning(RoadmapJob)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def heartbeat_job(session: AsyncSession, job_id: uuid.UUID) -> None:
    await session.execute(
        update(RoadmapJob).where(RoadmapJob.id == job_id).values(heartbeat_at=func.now())
    )


async def claim_items(
    session: AsyncSession,
    job_id: uuid.UUID,
    concept_ids: Sequence[uuid.UUID],
    *,
    max_attempts: int,
    lease: timedelta,
) -> list[ContentItem]:
    """Claim the claimable items of these concepts; returns only those this caller won.

    Items already ``succeeded`` are never returned, so a redelivered task pays
    only for what is missing. A ``running`` item is taken over only when its
    lease expired (its worker died).
    """
    now = func.now()
    claimable = or_(
        ContentItem.status.in_(CLAIMABLE_ITEM_STATUSES),
        and_(ContentItem.status == ItemStatus.running, ContentItem.claimed_at < now - lease),
    )
    stmt = (
        update(ContentItem)
        .where(
            ContentItem.job_id == job_id,
            ContentItem.concept_id.in_(concept_ids),
            ContentItem.attempts < max_attempts,
            claimable,
        )
        .values(
            status=ItemStatus.running,
            attempts=ContentItem.attempts + 1,
            claimed_at=now,
            updated_at=now,
        )
        .returning(ContentItem)
    )
    return list((await session.execute(stmt)).scalars())


async def fail_exhausted_items(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    max_attempts: int,
    lease: timedelta,
    concept_ids: Sequence[uuid.UUID] | None = None,
) -> list[ContentItem]:
    """Mark failed the items that used every attempt and are not actively held."""
    now = func.now()
    conditions = [
        ContentItem.job_id == job_id,
        ContentItem.attempts >= max_attempts,
        or_(
            ContentItem.status.in_(CLAIMABLE_ITEM_STATUSES),
            and_(ContentItem.status == ItemStatus.running, ContentItem.claimed_at < now - lease),
        ),
    ]
    if concept_ids is not None:
        conditions.append(ContentItem.concept_id.in_(concept_ids))
    stmt = (
        update(ContentItem)
        .where(*conditions)
        .values(
            status=ItemStatus.failed,
            error=func.coalesce(ContentItem.error, "gave up after repeated attempts")
            + " (attempts exhausted)",
            updated_at=now,
        )
        .returning(ContentItem)
    )
    return list((await session.execute(stmt)).scalars())


async def item_counts(session: AsyncSession, job_id: uuid.UUID) -> dict[ItemStatus, int]:
    rows = await session.execute(
        select(ContentItem.status, func.count())
        .where(ContentItem.job_id == job_id)
        .group_by(ContentItem.status)
    )
    counts = dict.fromkeys(ItemStatus, 0)
    for status, n in rows:
        counts[status] = n
    return counts
