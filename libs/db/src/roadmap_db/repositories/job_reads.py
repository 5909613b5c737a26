"""Read models of jobs for the API: one job, pages of jobs, its framework, a concept's content."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import ContentKind, ItemStatus, JobStatus
from roadmap_db.models import (
    Concept,
    ContentItem,
    ContentResult,
    Module,
    RoadmapJob,
    Stage,
    User,
)
from roadmap_db.repositories.cursor import InvalidCursor, decode_cursor, encode_cursor


async def get_owned_job(
    session: AsyncSession, job_id: uuid.UUID, owner_id: uuid.UUID
) -> RoadmapJob | None:
    """The job if it exists, is not deleted and belongs to ``owner_id``."""
    stmt = select(RoadmapJob).where(
        RoadmapJob.id == job_id, RoadmapJob.owner_id == owner_id, RoadmapJob.deleted_at.is_(None)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def job_is_owned(session: AsyncSession, job_id: uuid.UUID, owner_id: uuid.UUID) -> bool:
    stmt = select(RoadmapJob.id).where(
        RoadmapJob.id == job_id, RoadmapJob.owner_id == owner_id, RoadmapJob.deleted_at.is_(None)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


@dataclass(slots=True)
class JobPage:
    jobs: list[RoadmapJob]
    owners: dict[uuid.UUID, str]
    next_cursor: str | None


async def page_jobs(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID | None,
    status: JobStatus | None,
    limit: int,
    cursor: str | None,
    with_owner_emails: bool = False,
) -> JobPage:
    """Newest first (ids are UUIDv7), keyset-paginated; ``owner_id=None`` lists every user's."""
    stmt = select(RoadmapJob).where(RoadmapJob.deleted_at.is_(None))
    if owner_id is not None:
        stmt = stmt.where(RoadmapJob.owner_id == owner_id)
    if status is not None:
        stmt = stmt.where(RoadmapJob.status == status)
    if cursor is not None:
        (raw,) = decode_cursor(cursor, 1)
        try:
            before = uuid.UUID(raw)
        except ValueError as exc:
            raise InvalidCursor("malformed cursor") from exc
        stmt = stmt.where(RoadmapJob.id < before)
    stmt = stmt.order_by(RoadmapJob.id.desc()).limit(limit + 1)
    jobs = list((await session.execute(stmt)).scalars())
    next_cursor = None
    if len(jobs) > limit:
        jobs = jobs[:limit]
        next_cursor = encode_cursor(jobs[-1].id)
    owners: dict[uuid.UUID, str] = {}
    if with_owner_emails and jobs:
        rows = await session.execute(
            select(User.id, User.email).where(User.id.in_({j.owner_id for j in jobs}))
        )
        owners = {row.id: row.email for row in rows}
    return JobPage(jobs=jobs, owners=owners, next_cursor=next_cursor)


async def item_counts_by_job(
    session: AsyncSession, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[ItemStatus, int]]:
    counts: dict[uuid.UUID, dict[ItemStatus, int]] = {
        job_id: dict.fromkeys(ItemStatus, 0) for job_id in job_ids
    }
    if not job_ids:
        return counts
    rows = await session.execute(
        select(ContentItem.job_id, ContentItem.status, func.count())
        .where(ContentItem.job_id.in_(list(job_ids)))
        .group_by(ContentItem.job_id, ContentItem.status)
    )
    for job_id, status, n in rows:
        counts[job_id][status] = n
    return counts


@dataclass(slots=True)
class FrameworkTree:
    stages: list[Stage]
    modules: list[Module]
    concepts: list[Concept]
    items: list[ContentItem]
    modules_by_stage: dict[uuid.UUID, list[Module]] = field(default_factory=dict)
    concepts_by_module: dict[uuid.UUID, list[Concept]] = field(default_factory=dict)
    items_by_concept: dict[uuid.UUID, list[ContentItem]] = field(default_factory=dict)


async def framework_tree(session: AsyncSession, job_id: uuid.UUID) -> FrameworkTree | None:
    """Stages → modules → concepts (by position) with each concept's content items."""
    stages = list(
        (
            await session.execute(
                select(Stage).where(Stage.job_id == job_id).order_by(Stage.position)
            )
        ).scalars()
    )
    if not stages:
        return None
    modules = list(
        (
            await session.execute(
                select(Module).where(Module.job_id == job_id).order_by(Module.position)
            )
        ).scalars()
    )
    concepts = list(
        (
            await session.execute(
                select(Concept).where(Concept.job_id == job_id).order_by(Concept.position)
            )
        ).scalars()
    )
    items = list(
        (await session.execute(select(ContentItem).where(ContentItem.job_id == job_id))).scalars()
    )
    tree = FrameworkTree(stages=stages, modules=modules, concepts=concepts, items=items)
    for module in modules:
        tree.modules_by_stage.setdefault(module.stage_id, []).append(module)
    for concept in concepts:
        tree.concepts_by_module.setdefault(concept.module_id, []).append(concept)
    for item in items:
        tree.items_by_concept.setdefault(item.concept_id, []).append(item)
    return tree


async def get_job_concept(
    session: AsyncSession, job_id: uuid.UUID, concept_id: uuid.UUID
) -> Concept | None:
    stmt = select(Concept).where(Concept.id == concept_id, Concept.job_id == job_id)
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(slots=True)
class ItemContent:
    item: ContentItem
    result: ContentResult | None
    versions: list[int]


async def concept_content(
    session: AsyncSession, concept_id: uuid.UUID, *, version: int | None = None
) -> dict[ContentKind, ItemContent]:
    """Each content item of the concept with its latest result (or the one of ``version``)."""
    items = list(
        (
            await session.execute(select(ContentItem).where(ContentItem.concept_id == concept_id))
        ).scalars()
    )
    if not items:
        return {}
    item_ids = [i.id for i in items]
    versions: dict[uuid.UUID, list[int]] = {i: [] for i in item_ids}
    rows = await session.execute(
        select(ContentResult.item_id, ContentResult.version)
        .where(ContentResult.item_id.in_(item_ids))
        .order_by(ContentResult.item_id, ContentResult.version)
    )
    for item_id, v in rows:
        versions[item_id].append(v)
    wanted = {
        item.id: version if version is not None else max(versions[item.id], default=0)
        for item in items
    }
    results: dict[uuid.UUID, ContentResult] = {}
    pairs = [(item_id, v) for item_id, v in wanted.items() if v in versions[item_id]]
    if pairs:
        found = await session.execute(
            select(ContentResult).where(
                tuple_(ContentResult.item_id, ContentResult.version).in_(pairs)
            )
        )
        results = {r.item_id: r for r in found.scalars()}
    return {
        ContentKind(item.kind): ItemContent(
            item=item, result=results.get(item.id), versions=versions[item.id]
        )
        for item in items
    }


async def job_status_counts(session: AsyncSession) -> dict[JobStatus, int]:
    rows = await session.execute(
        select(RoadmapJob.status, func.count())
        .where(RoadmapJob.deleted_at.is_(None))
        .group_by(RoadmapJob.status)
    )
    counts = dict.fromkeys(JobStatus, 0)
    for status, n in rows:
        counts[status] = n
    return counts
