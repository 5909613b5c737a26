"""A learner's own progress: concepts marked done and quiz attempts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_db.models import Concept, ConceptProgress, QuizAttempt


async def set_concept_progress(
    session: AsyncSession, *, user_id: uuid.UUID, concept_id: uuid.UUID, completed: bool
) -> ConceptProgress:
    """Upsert; ``completed_at`` keeps the first completion time until it is unmarked."""
    values = insert(ConceptProgress).values(
        user_id=user_id,
        concept_id=concept_id,
        completed=completed,
        completed_at=func.now() if completed else None,
    )
    stmt = values.on_conflict_do_update(
        index_elements=[ConceptProgress.user_id, ConceptProgress.concept_id],
        set_={
            "completed": values.excluded.completed,
            "completed_at": func.coalesce(
                ConceptProgress.completed_at, values.excluded.completed_at
            )
            if completed
            else None,
            "updated_at": func.now(),
        },
    ).returning(ConceptProgress)
    result = await session.execute(stmt, execution_options={"populate_existing": True})
    return result.scalar_one()


async def progress_for_job(
    session: AsyncSession, *, user_id: uuid.UUID, job_id: uuid.UUID
) -> dict[uuid.UUID, ConceptProgress]:
    stmt = (
        select(ConceptProgress)
        .join(Concept, Concept.id == ConceptProgress.concept_id)
        .where(ConceptProgress.user_id == user_id, Concept.job_id == job_id)
    )
    return {p.concept_id: p for p in (await session.execute(stmt)).scalars()}


async def add_quiz_attempt(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    concept_id: uuid.UUID,
    quiz_version: int,
    answers: dict[str, Any],
    score: float,
) -> QuizAttempt:
    attempt = QuizAttempt(
        user_id=user_id,
        concept_id=concept_id,
        quiz_version=quiz_version,
        answers=answers,
        score=score,
    )
    session.add(attempt)
    await session.flush()
    await session.refresh(attempt, ["created_at"])
    return attempt
