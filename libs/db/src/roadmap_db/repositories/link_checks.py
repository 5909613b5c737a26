"""Resources items whose links are due for a re-check, and storing what it found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import ContentKind, ItemStatus
from roadmap_db.models import Concept, ContentItem, ContentResult, RoadmapJob


@dataclass(frozen=True, slots=True)
class DueItem:
    item_id: uuid.UUID
    job_id: uuid.UUID
    concept_id: uuid.UUID
    concept_title: str
    version: int
    model: str
    body: dict[str, Any]


async def due_resource_items(
    session: AsyncSession, *, checked_before: datetime, limit: int
) -> list[DueItem]:
    """Stored resources last checked before ``checked_before`` (never checked first)."""
    rows = await session.execute(
        select(
            ContentItem.id,
            ContentItem.job_id,
            ContentItem.concept_id,
            Concept.title,
            ContentItem.version,
            ContentResult.model,
            ContentResult.body,
        )
        .join(Concept, Concept.id == ContentItem.concept_id)
        .join(RoadmapJob, RoadmapJob.id == ContentItem.job_id)
        .join(
            ContentResult,
            and_(
                ContentResult.item_id == ContentItem.id,
                ContentResult.version == ContentItem.version,
            ),
        )
        .where(
            ContentItem.kind == ContentKind.resources,
            ContentItem.status == ItemStatus.succeeded,
            or_(
                ContentItem.links_checked_at.is_(None),
                ContentItem.links_checked_at < checked_before,
            ),
            RoadmapJob.deleted_at.is_(None),
        )
        .order_by(ContentItem.links_checked_at.asc().nulls_first(), ContentItem.id)
        .limit(limit)
    )
    return [DueItem(*row) for row in rows]


async def store_recheck(
    session: AsyncSession, due: DueItem, body: dict[str, Any], *, new_version: bool
) -> int | None:
    """Record a re-check of ``due``; returns the item's version after it (``None``: the item
    changed meanwhile, a regeneration for instance, and nothing was stored).

    ``new_version``: links died, ``body`` (replacements, dead marks) becomes the next
    version, so the learner's history shows the change. Otherwise every link still
    answered and only their checks are refreshed in the current version's body.
    """
    values: dict[str, Any] = {"links_checked_at": func.now()}
    if new_version:
        values["version"] = ContentItem.version + 1
    version = (
        await session.execute(
            update(ContentItem)
            .where(
                ContentItem.id == due.item_id,
                ContentItem.version == due.version,
                ContentItem.status == ItemStatus.succeeded,
            )
            .values(**values)
            .returning(ContentItem.version)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if version is None:
        return None
    if new_version:
        await session.execute(
            insert(ContentResult).values(
                item_id=due.item_id, version=version, body=body, model=due.model
            )
        )
    else:
        await session.execute(
            update(ContentResult)
            .where(ContentResult.item_id == due.item_id, ContentResult.version == version)
            .values(body=body)
            .execution_options(synchronize_session=False)
        )
    return int(version)
