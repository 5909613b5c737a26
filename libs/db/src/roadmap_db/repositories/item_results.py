"""Content items and their versioned results.

A result is stored in the same transaction that moves its item to
``succeeded``, and only while the caller still holds the item (its claim
token) and the job is still ``generating``: a worker whose job was cancelled,
or whose claim was taken over, stores nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import ContentKind, ItemStatus, JobStatus
from roadmap_db.models import Concept, ContentItem, ContentResult, RoadmapJob
from roadmap_db.repositories.llm_usage import CallUsage, insert_llm_calls, job_totals_increment


@dataclass(frozen=True, slots=True)
class ResultUsage:
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class ItemSave:
    """One answered item to store: its result, and the LLM calls it made since its outcome
    was last stored."""

    item_id: uuid.UUID
    body: dict[str, Any]
    instructions: str | None
    usage: ResultUsage
    calls: Sequence[CallUsage] = ()


async def save_item_results(
    session: AsyncSession, job_id: uuid.UUID, token: str, saves: Sequence[ItemSave]
) -> dict[uuid.UUID, int | None]:
    """Store a new result version of every item in ``saves`` and mark it ``succeeded``;
    returns each item's new version, ``None`` where nothing was stored.

    The LLM calls are recorded and added to the job's totals in any case: they were paid
    for. A result is stored only while the job is ``generating`` and the item ``running``
    under ``token``. The job row is updated (and so locked) first: a concurrent cancel
    either waits for this save or wins before it. Four statements whatever the number of
    items, so that answers arriving together hold the job's lock once, briefly.
    """
    versions: dict[uuid.UUID, int | None] = {s.item_id: None for s in saves}
    calls = [c for s in saves for c in s.calls]
    status = (
        await session.execute(
            update(RoadmapJob)
            .where(RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None))
            .values(updated_at=func.now(), **job_totals_increment(calls))
            .returning(RoadmapJob.status)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if status is None:
        return versions
    await insert_llm_calls(session, calls)
    if status is not JobStatus.generating or not saves:
        return versions
    stored = await session.execute(
        update(ContentItem)
        .where(
            ContentItem.id.in_(list(versions)),
            ContentItem.status == ItemStatus.running,
            ContentItem.claim_token == token,
        )
        .values(
            status=ItemStatus.succeeded,
            version=ContentItem.version + 1,
            error=None,
            instructions=None,
            claim_token=None,
            updated_at=func.now(),
            # Resources are checked just before they are stored.
            links_checked_at=case(
                (ContentItem.kind == ContentKind.resources, func.now()), else_=None
            ),
        )
        .returning(ContentItem.id, ContentItem.version)
        .execution_options(synchronize_session=False)
    )
    versions.update((item_id, int(version)) for item_id, version in stored.all())
    rows = [
        {
            "item_id": s.item_id,
            "version": versions[s.item_id],
            "body": s.body,
            "model": s.usage.model,
            "instructions": s.instructions,
            "prompt_tokens": s.usage.prompt_tokens,
            "completion_tokens": s.usage.completion_tokens,
            "cost_usd": s.usage.cost_usd,
        }
        for s in saves
        if versions[s.item_id] is not None
    ]
    if rows:
        await session.execute(insert(ContentResult), rows)
    return versions


async def save_item_result(
    session: AsyncSession,
    job_id: uuid.UUID,
    item_id: uuid.UUID,
    token: str,
    *,
    body: dict[str, Any],
    instructions: str | None,
    usage: ResultUsage,
    calls: Sequence[CallUsage] = (),
) -> int | None:
    """:func:`save_item_results` for one item; returns its new version or ``None``."""
    save = ItemSave(item_id, body, instructions, usage, calls)
    return (await save_item_results(session, job_id, token, [save]))[item_id]


async def begin_attempt(
    session: AsyncSession,
    job_id: uuid.UUID,
    item_id: uuid.UUID,
    token: str,
    *,
    max_attempts: int,
) -> int | None:
    """Count the attempt about to start (and renew the lease); returns its number.

    ``None`` when no attempt may start: the job is no longer ``generating``, the
    item is no longer ``running`` under ``token``, or its attempts are used up
    (:func:`attempts_left` tells which).
    """
    begun = await begin_attempts(session, job_id, [item_id], token, max_attempts=max_attempts)
    return begun.get(item_id)


async def begin_attempts(
    session: AsyncSession,
    job_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID],
    token: str,
    *,
    max_attempts: int,
) -> dict[uuid.UUID, int]:
    """:func:`begin_attempt` for several items in one statement: the attempt number of
    each item that may start one (the others are left out)."""
    if not item_ids:
        return {}
    job_generating = (
        select(RoadmapJob.id)
        .where(
            RoadmapJob.id == job_id,
            RoadmapJob.status == JobStatus.generating,
            RoadmapJob.deleted_at.is_(None),
        )
        .exists()
    )
    rows = await session.execute(
        update(ContentItem)
        .where(
            ContentItem.id.in_(item_ids),
            ContentItem.status == ItemStatus.running,
            ContentItem.claim_token == token,
            ContentItem.attempts < max_attempts,
            job_generating,
        )
        .values(
            attempts=ContentItem.attempts + 1,
            claimed_at=func.now(),
            updated_at=func.now(),
        )
        .returning(ContentItem.id, ContentItem.attempts)
        .execution_options(synchronize_session=False)
    )
    return dict(rows.all())


async def attempts_left(
    session: AsyncSession, item_id: uuid.UUID, token: str, *, max_attempts: int
) -> bool | None:
    """Whether the item, still held under ``token``, may be attempted again (``None``:
    not held any more)."""
    attempts = (
        await session.execute(
            select(ContentItem.attempts).where(
                ContentItem.id == item_id,
                ContentItem.status == ItemStatus.running,
                ContentItem.claim_token == token,
            )
        )
    ).scalar_one_or_none()
    return None if attempts is None else attempts < max_attempts


async def record_item_error(
    session: AsyncSession, item_id: uuid.UUID, token: str, *, error: str
) -> bool:
    """Note the error of the attempt that just failed on an item this caller holds."""
    result = await session.execute(
        update(ContentItem)
        .where(
            ContentItem.id == item_id,
            ContentItem.status == ItemStatus.running,
            ContentItem.claim_token == token,
        )
        .values(error=error[:4000], updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fail_item(session: AsyncSession, item_id: uuid.UUID, token: str, *, error: str) -> bool:
    """Give up on an item this caller holds (permanent error or attempts used up)."""
    result = await session.execute(
        update(ContentItem)
        .where(
            ContentItem.id == item_id,
            ContentItem.status == ItemStatus.running,
            ContentItem.claim_token == token,
        )
        .values(
            status=ItemStatus.failed, error=error[:4000], claim_token=None, updated_at=func.now()
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_item(
    session: AsyncSession, item_id: uuid.UUID, token: str, *, error: str | None = None
) -> bool:
    """Hand an item this caller holds back to ``queued`` (its attempts stay counted)."""
    result = await session.execute(
        update(ContentItem)
        .where(
            ContentItem.id == item_id,
            ContentItem.status == ItemStatus.running,
            ContentItem.claim_token == token,
        )
        .values(
            status=ItemStatus.queued,
            error=None if error is None else error[:4000],
            claim_token=None,
            updated_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def concepts_with_items_in(
    session: AsyncSession, job_id: uuid.UUID, statuses: Sequence[ItemStatus]
) -> list[uuid.UUID]:
    """Concepts of the job with at least one item in ``statuses``, in curriculum order."""
    rows = await session.execute(
        select(Concept.id)
        .where(
            Concept.job_id == job_id,
            select(ContentItem.id)
            .where(ContentItem.concept_id == Concept.id, ContentItem.status.in_(statuses))
            .exists(),
        )
        .order_by(Concept.position)
    )
    return list(rows.scalars())


async def item_progress(session: AsyncSession, job_id: uuid.UUID) -> dict[str, int]:
    """Item counts by status plus ``total``, for progress events."""
    rows = await session.execute(
        select(ContentItem.status, func.count())
        .where(ContentItem.job_id == job_id)
        .group_by(ContentItem.status)
    )
    counts = {s.value: 0 for s in ItemStatus}
    for status, n in rows.all():
        counts[status.value] = n
    counts["total"] = sum(counts.values())
    return counts


async def latest_results(
    session: AsyncSession, job_id: uuid.UUID
) -> dict[tuple[uuid.UUID, ContentKind], ContentResult]:
    """The newest stored result of every item of the job, by (concept id, kind)."""
    rows = await session.execute(
        select(ContentItem.concept_id, ContentItem.kind, ContentResult)
        .join(ContentResult, ContentResult.item_id == ContentItem.id)
        .where(ContentItem.job_id == job_id, ContentResult.version == ContentItem.version)
    )
    return {(concept_id, kind): result for concept_id, kind, result in rows.all()}


async def result_versions(session: AsyncSession, item_id: uuid.UUID) -> list[ContentResult]:
    """Every stored version of one item, oldest first."""
    rows = await session.execute(
        select(ContentResult)
        .where(ContentResult.item_id == item_id)
        .order_by(ContentResult.version)
    )
    return list(rows.scalars())
