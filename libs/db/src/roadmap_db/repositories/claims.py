"""Claims: conditional updates that let exactly one worker own a piece of work.

Every claim increments an attempt counter in the same statement. Work whose
counter reached the limit is never claimed again: it is marked failed instead,
so a task that keeps crashing its process cannot loop forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
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
    token: str | None = None,
) -> RoadmapJob | None:
    """Move the job into ``to_status`` if it waits in ``from_statuses`` (or its lease expired).

    ``token`` (the claiming task message's id) is stored on the row; a job in
    ``to_status`` held under the same token is taken over at once, because the
    only way the same message arrives again is that its previous run ended.

    Returns the claimed row, or ``None`` when someone else holds it, it moved
    on, it was deleted, or it has no attempts left.
    """
    now = func.now()
    stale = and_(RoadmapJob.status == to_status, RoadmapJob.heartbeat_at < now - lease)
    if token is not None:
        stale = or_(stale, and_(RoadmapJob.status == to_status, RoadmapJob.claim_token == token))
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
            claim_token=token,
            updated_at=now,
            started_at=func.coalesce(RoadmapJob.started_at, now),
        )
        .returning(RoadmapJob)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def heartbeat_job(session: AsyncSession, job_id: uuid.UUID, token: str | None = None) -> None:
    """Renew the job's lease (only while ``token`` still holds it, when given)."""
    stmt = update(RoadmapJob).where(RoadmapJob.id == job_id).values(heartbeat_at=func.now())
    if token is not None:
        stmt = stmt.where(RoadmapJob.claim_token == token)
    await session.execute(stmt)


def _held_item(token: str | None, lease: timedelta) -> ColumnElement[bool]:
    """A running item that may be taken over: lease expired, or held by ``token`` itself."""
    running = ContentItem.status == ItemStatus.running
    expired = and_(running, ContentItem.claimed_at < func.now() - lease)
    if token is None:
        return expired
    return or_(expired, and_(running, ContentItem.claim_token == token))


async def claim_items(
    session: AsyncSession,
    job_id: uuid.UUID,
    concept_ids: Sequence[uuid.UUID],
    *,
    max_attempts: int,
    lease: timedelta,
    token: str | None = None,
    count_attempt: bool = True,
    max_claims: int | None = None,
) -> list[ContentItem]:
    """Claim the claimable items of these concepts; returns only those this caller won.

    Items already ``succeeded`` are never returned, so a redelivered task pays
    only for what is missing. A ``running`` item is taken over only when its
    lease expired (its worker died) or when it is held under ``token`` (this
    very message, redelivered after its previous run ended).

    ``count_attempt=False`` leaves the attempt counter to the caller, who then
    counts an attempt when it really starts one
    (:func:`roadmap_db.repositories.item_results.begin_attempt`): an item that
    was claimed but never started is not charged when its process dies. Every
    claim is counted in ``claims`` instead, bounded by ``max_claims``, so an item
    whose tasks keep dying before any attempt still ends (see
    :func:`fail_exhausted_items`).
    """
    now = func.now()
    claimable = or_(ContentItem.status.in_(CLAIMABLE_ITEM_STATUSES), _held_item(token, lease))
    stmt = (
        update(ContentItem)
        .where(
            ContentItem.job_id == job_id,
            ContentItem.concept_id.in_(concept_ids),
            ContentItem.attempts < max_attempts,
            *([] if max_claims is None else [ContentItem.claims < max_claims]),
            claimable,
        )
        .values(
            status=ItemStatus.running,
            attempts=ContentItem.attempts + (1 if count_attempt else 0),
            claims=ContentItem.claims + 1,
            claimed_at=now,
            claim_token=token,
            updated_at=now,
        )
        .returning(ContentItem)
    )
    return list((await session.execute(stmt)).scalars())


async def heartbeat_items(session: AsyncSession, token: str) -> int:
    """Renew the lease of every item still running under ``token``; returns how many.

    The job row first, as a claim takes it
    (:func:`roadmap_db.repositories.job_lifecycle.get_job_for_claims`): the API's cancel
    locks the job, then its items, and a renewal that went straight to the items could
    deadlock with it.
    """
    await session.execute(
        select(RoadmapJob.id)
        .where(
            RoadmapJob.id.in_(
                select(ContentItem.job_id).where(
                    ContentItem.claim_token == token, ContentItem.status == ItemStatus.running
                )
            )
        )
        .with_for_update(read=True, key_share=True)
    )
    result = await session.execute(
        update(ContentItem)
        .where(ContentItem.claim_token == token, ContentItem.status == ItemStatus.running)
        .values(claimed_at=func.now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def fail_exhausted_items(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    max_attempts: int,
    lease: timedelta,
    concept_ids: Sequence[uuid.UUID] | None = None,
    token: str | None = None,
    max_claims: int | None = None,
) -> list[ContentItem]:
    """Mark failed the items that used every attempt (or every claim, when
    ``max_claims`` is given) and are not actively held.

    An item held under ``token`` counts as not held: the message that holds it
    is the caller, redelivered after its process died on the last attempt.
    """
    now = func.now()
    conditions = [
        ContentItem.job_id == job_id,
        or_(
            ContentItem.attempts >= max_attempts,
            *([] if max_claims is None else [ContentItem.claims >= max_claims]),
        ),
        or_(ContentItem.status.in_(CLAIMABLE_ITEM_STATUSES), _held_item(token, lease)),
    ]
    if concept_ids is not None:
        conditions.append(ContentItem.concept_id.in_(concept_ids))
    stmt = (
        update(ContentItem)
        .where(*conditions)
        .values(
            status=ItemStatus.failed,
            error=func.coalesce(ContentItem.error, "gave up after repeated attempts")
            + case(
                (ContentItem.attempts >= max_attempts, " (attempts exhausted)"),
                else_=" (its tasks kept ending before it finished)",
            ),
            claim_token=None,
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
