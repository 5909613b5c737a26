"""Frameworks: a job's curriculum as rows (stages → modules → concepts → items) and review rounds.

A framework is stored whole: replacing it (a revision after review feedback)
deletes the previous rows, whose items never held content, and inserts the new
ones with one content item per concept and kind.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core import domain
from roadmap_core.domain import ContentKind, ItemStatus, ReviewDecision
from roadmap_core.ids import new_id
from roadmap_db.models import Concept, ContentItem, Module, ReviewRound, RoadmapJob, Stage


async def replace_framework(
    session: AsyncSession,
    job_id: uuid.UUID,
    framework: domain.Framework,
    *,
    item_status: ItemStatus,
) -> list[uuid.UUID]:
    """Store ``framework`` as the job's curriculum; returns the concept ids in order.

    Every concept gets one item per :class:`ContentKind`, in ``item_status``
    (``pending`` while the learner reviews, ``queued`` when generation starts).
    """
    await session.execute(delete(Stage).where(Stage.job_id == job_id))
    stages: list[dict[str, Any]] = []
    modules: list[dict[str, Any]] = []
    concepts: list[dict[str, Any]] = []
    position = 0
    for s_pos, stage in enumerate(framework.stages):
        stage_id = new_id()
        stages.append(
            {
                "id": stage_id,
                "job_id": job_id,
                "position": s_pos,
                "title": stage.title,
                "description": stage.description,
            }
        )
        for m_pos, module in enumerate(stage.modules):
            module_id = new_id()
            modules.append(
                {
                    "id": module_id,
                    "job_id": job_id,
                    "stage_id": stage_id,
                    "position": m_pos,
                    "title": module.title,
                    "description": module.description,
                }
            )
            for concept in module.concepts:
                concepts.append(
                    {
                        "id": new_id(),
                        "job_id": job_id,
                        "module_id": module_id,
                        "key": concept.id,
                        "position": position,
                        "title": concept.title,
                        "summary": concept.summary,
                        "difficulty": concept.difficulty,
                        "estimated_hours": concept.estimated_hours,
                        "prerequisites": list(concept.prerequisites),
                    }
                )
                position += 1
    items = [
        {
            "id": new_id(),
            "job_id": job_id,
            "concept_id": c["id"],
            "kind": kind,
            "status": item_status,
        }
        for c in concepts
        for kind in ContentKind
    ]
    for model, rows in (
        (Stage, stages),
        (Module, modules),
        (Concept, concepts),
        (ContentItem, items),
    ):
        if rows:
            await session.execute(insert(model), rows)
    return [c["id"] for c in concepts]


async def load_framework(session: AsyncSession, job_id: uuid.UUID) -> domain.Framework | None:
    """The stored curriculum as the domain model, or ``None`` if the job has none yet."""
    framework, _ = await load_framework_and_concepts(session, job_id)
    return framework


async def load_framework_and_concepts(
    session: AsyncSession, job_id: uuid.UUID
) -> tuple[domain.Framework | None, list[Concept]]:
    """The curriculum and its concept rows (curriculum order), in two queries."""
    head = (
        await session.execute(
            select(RoadmapJob.title, RoadmapJob.summary).where(RoadmapJob.id == job_id)
        )
    ).first()
    if head is None:
        return None, []
    rows = (
        await session.execute(
            select(Stage, Module, Concept)
            .join(Module, Module.stage_id == Stage.id)
            .join(Concept, Concept.module_id == Module.id)
            .where(Stage.job_id == job_id)
            .order_by(Concept.position)
        )
    ).all()
    if not rows:
        return None, []
    stages = {stage.id: stage for stage, _, _ in rows}
    modules = {module.id: module for _, module, _ in rows}
    concepts = [concept for _, _, concept in rows]
    framework = framework_from_rows(
        head.title or "",
        head.summary or "",
        list(stages.values()),
        list(modules.values()),
        concepts,
    )
    return framework, concepts


def framework_from_rows(
    title: str,
    summary: str,
    stages: Sequence[Stage],
    modules: Sequence[Module],
    concepts: Sequence[Concept],
) -> domain.Framework:
    by_module: dict[uuid.UUID, list[domain.Concept]] = {}
    for c in sorted(concepts, key=lambda c: c.position):
        by_module.setdefault(c.module_id, []).append(concept_model(c))
    by_stage: dict[uuid.UUID, list[domain.Module]] = {}
    for m in sorted(modules, key=lambda m: m.position):
        by_stage.setdefault(m.stage_id, []).append(
            domain.Module(
                title=m.title, description=m.description, concepts=by_module.get(m.id, [])
            )
        )
    return domain.Framework(
        title=title or "Roadmap",
        summary=summary,
        stages=[
            domain.Stage(title=s.title, description=s.description, modules=by_stage.get(s.id, []))
            for s in sorted(stages, key=lambda s: s.position)
        ],
    )


def concept_model(row: Concept) -> domain.Concept:
    return domain.Concept(
        id=row.key,
        title=row.title,
        summary=row.summary,
        difficulty=row.difficulty,
        estimated_hours=row.estimated_hours,
        prerequisites=list(row.prerequisites),
    )


async def load_concepts(
    session: AsyncSession, job_id: uuid.UUID, concept_ids: Sequence[uuid.UUID] | None = None
) -> list[Concept]:
    """Concept rows of the job (all, or those named), in curriculum order."""
    stmt = select(Concept).where(Concept.job_id == job_id)
    if concept_ids is not None:
        stmt = stmt.where(Concept.id.in_(concept_ids))
    return list((await session.execute(stmt.order_by(Concept.position))).scalars())


async def add_review_round(
    session: AsyncSession, job_id: uuid.UUID, framework: domain.Framework
) -> ReviewRound:
    """Open the next review round (``pending``) with an immutable snapshot of ``framework``."""
    last = (
        await session.execute(
            select(func.coalesce(func.max(ReviewRound.round), 0)).where(
                ReviewRound.job_id == job_id
            )
        )
    ).scalar_one()
    row = ReviewRound(
        id=new_id(),
        job_id=job_id,
        round=int(last) + 1,
        framework=framework.model_dump(mode="json"),
        decision=ReviewDecision.pending,
    )
    session.add(row)
    await session.flush()
    return row


async def latest_review_round(session: AsyncSession, job_id: uuid.UUID) -> ReviewRound | None:
    return (
        await session.execute(
            select(ReviewRound)
            .where(ReviewRound.job_id == job_id)
            .order_by(ReviewRound.round.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
