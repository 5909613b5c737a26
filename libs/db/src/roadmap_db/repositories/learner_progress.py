"""A learner's own progress: each concept's status, and quiz attempts with their scores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import LearnerStatus
from roadmap_db.models import Concept, ConceptProgress, QuizAttempt
from roadmap_db.repositories.cursor import InvalidCursor, decode_cursor, encode_cursor


async def set_concept_status(
    session: AsyncSession, *, user_id: uuid.UUID, concept_id: uuid.UUID, status: LearnerStatus
) -> ConceptProgress:
    """Upsert; ``completed_at`` keeps the first time it was marked done while it stays done."""
    done = status is LearnerStatus.done
    values = insert(ConceptProgress).values(
        user_id=user_id,
        concept_id=concept_id,
        status=status,
        completed_at=func.now() if done else None,
    )
    stmt = values.on_conflict_do_update(
        index_elements=[ConceptProgress.user_id, ConceptProgress.concept_id],
        set_={
            "status": values.excluded.status,
            "completed_at": func.coalesce(
                ConceptProgress.completed_at, values.excluded.completed_at
            )
            if done
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


@dataclass(frozen=True, slots=True)
class QuizScores:
    """One learner's attempts at one concept's quizzes."""

    attempts: int
    best: float


async def quiz_scores_for_job(
    session: AsyncSession, *, user_id: uuid.UUID, job_id: uuid.UUID
) -> dict[uuid.UUID, QuizScores]:
    stmt = (
        select(QuizAttempt.concept_id, func.count(), func.max(QuizAttempt.score))
        .join(Concept, Concept.id == QuizAttempt.concept_id)
        .where(QuizAttempt.user_id == user_id, Concept.job_id == job_id)
        .group_by(QuizAttempt.concept_id)
    )
    return {
        concept_id: QuizScores(attempts=int(n), best=float(best))
        for concept_id, n, best in await session.execute(stmt)
    }


async def concept_quiz_scores(
    session: AsyncSession, *, user_id: uuid.UUID, concept_id: uuid.UUID
) -> QuizScores | None:
    stmt = select(func.count(), func.max(QuizAttempt.score)).where(
        QuizAttempt.user_id == user_id, QuizAttempt.concept_id == concept_id
    )
    n, best = (await session.execute(stmt)).one()
    return QuizScores(attempts=int(n), best=float(best)) if n else None


async def add_quiz_attempt(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    concept_id: uuid.UUID,
    quiz_version: int,
    answers: list[list[int]],
    score: float,
    correct: int,
    total: int,
    results: list[dict[str, Any]],
) -> QuizAttempt:
    attempt = QuizAttempt(
        user_id=user_id,
        concept_id=concept_id,
        quiz_version=quiz_version,
        answers=answers,
        score=score,
        correct=correct,
        total=total,
        results=results,
    )
    session.add(attempt)
    await session.flush()
    await session.refresh(attempt, ["created_at"])
    return attempt


@dataclass(slots=True)
class AttemptPage:
    attempts: list[QuizAttempt]
    next_cursor: str | None


async def list_quiz_attempts(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    concept_id: uuid.UUID,
    limit: int,
    cursor: str | None,
) -> AttemptPage:
    """Newest first; ``cursor`` is the ``next_cursor`` of the page before (``InvalidCursor``)."""
    stmt = select(QuizAttempt).where(
        QuizAttempt.user_id == user_id, QuizAttempt.concept_id == concept_id
    )
    if cursor is not None:
        created, attempt_id = decode_cursor(cursor, 2)
        try:
            after = (datetime.fromisoformat(created), uuid.UUID(attempt_id))
        except ValueError as exc:
            raise InvalidCursor("malformed cursor") from exc
        stmt = stmt.where(tuple_(QuizAttempt.created_at, QuizAttempt.id) < after)
    stmt = stmt.order_by(QuizAttempt.created_at.desc(), QuizAttempt.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id) if more and rows else None
    )
    return AttemptPage(rows, next_cursor)
