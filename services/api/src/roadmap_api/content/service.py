"""A concept's content (any stored version), its regeneration, and the learner's progress."""

from __future__ import annotations

import uuid

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api import audit, quotas
from roadmap_api.content.schemas import (
    CONTENT_ITEM,
    ConceptOut,
    ContentItemOut,
    ProgressOut,
    QuestionResult,
    QuizAttemptIn,
    QuizAttemptOut,
    RegenerateAccepted,
    RegenerateIn,
)
from roadmap_api.errors import InvalidState, NotFound
from roadmap_api.roadmaps import announce
from roadmap_api.roadmaps.schemas import links_for
from roadmap_api.roadmaps.service import locked_job, owned_job
from roadmap_api.state import AppServices
from roadmap_core.domain import ContentKind, JobStatus, JobStep, Quiz
from roadmap_db.models import Concept, User
from roadmap_db.repositories import job_lifecycle, job_reads, learner_progress

CONCEPT_NOT_FOUND = "No such concept in this roadmap."


async def _owned_concept(
    session: AsyncSession, user: User, job_id: uuid.UUID, concept_id: uuid.UUID
) -> Concept:
    await owned_job(session, job_id, user.id)
    concept = await job_reads.get_job_concept(session, job_id, concept_id)
    if concept is None:
        raise NotFound(CONCEPT_NOT_FOUND)
    return concept


async def concept(
    session: AsyncSession,
    user: User,
    job_id: uuid.UUID,
    concept_id: uuid.UUID,
    version: int | None,
) -> ConceptOut:
    found = await _owned_concept(session, user, job_id, concept_id)
    content = await job_reads.concept_content(session, found.id, version=version)
    if version is not None and not any(c.result for c in content.values()):
        raise NotFound(f"No content of version {version} for this concept.")
    done = await learner_progress.progress_for_job(session, user_id=user.id, job_id=job_id)
    mark = done.get(found.id)
    return ConceptOut(
        id=found.id,
        roadmap_id=job_id,
        key=found.key,
        title=found.title,
        summary=found.summary,
        difficulty=found.difficulty,
        estimated_hours=found.estimated_hours,
        prerequisites=list(found.prerequisites),
        completed=bool(mark and mark.completed),
        content={kind: _item(kind, c) for kind, c in content.items()},
    )


def _item(kind: ContentKind, c: job_reads.ItemContent) -> ContentItemOut:
    result = None
    if c.result is not None:
        result = {
            "version": c.result.version,
            "body": c.result.body,
            "model": c.result.model,
            "instructions": c.result.instructions,
            "created_at": c.result.created_at,
        }
    return CONTENT_ITEM.validate_python(
        {
            "kind": kind,
            "status": c.item.status,
            "version": c.item.version,
            "versions": c.versions,
            "error": c.item.error,
            "result": result,
        }
    )


async def regenerate(
    session: AsyncSession,
    services: AppServices,
    user: User,
    job_id: uuid.UUID,
    concept_id: uuid.UUID,
    body: RegenerateIn,
) -> RegenerateAccepted:
    job = await locked_job(session, job_id, user.id)
    if await job_reads.get_job_concept(session, job.id, concept_id) is None:
        raise NotFound(CONCEPT_NOT_FOUND)
    count = await job_lifecycle.requeue_concept_items(
        session, job.id, concept_id, kinds=body.kinds, instructions=body.instructions
    )
    if count == 0:
        raise InvalidState(
            "Content can be regenerated once it has been generated (or has failed).",
            status_now=job.status,
        )
    settings = services.settings
    await quotas.reserve(
        session,
        settings,
        owner_id=user.id,
        job_id=job.id,
        tokens=quotas.items_tokens(settings, count),
    )
    await session.commit()
    await announce.publish(
        services, job.id, announce.status_changed(JobStatus.generating, JobStep.content_generation)
    )
    await services.enqueuer.regenerate_concept(job.id, concept_id)
    audit.job_event(
        "concept regeneration requested",
        job.id,
        step="regenerate",
        user_id=user.id,
        concept_id=concept_id,
        kinds=[k.value for k in body.kinds],
        with_instructions=body.instructions is not None,
    )
    return RegenerateAccepted(
        id=job.id,
        concept_id=concept_id,
        kinds=body.kinds,
        status=JobStatus.generating.value,
        links=links_for(job.id),
    )


async def set_progress(
    session: AsyncSession, user: User, job_id: uuid.UUID, concept_id: uuid.UUID, completed: bool
) -> ProgressOut:
    await _owned_concept(session, user, job_id, concept_id)
    row = await learner_progress.set_concept_progress(
        session, user_id=user.id, concept_id=concept_id, completed=completed
    )
    out = ProgressOut(
        concept_id=row.concept_id,
        completed=row.completed,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
    )
    await session.commit()
    return out


async def attempt_quiz(
    session: AsyncSession, user: User, job_id: uuid.UUID, concept_id: uuid.UUID, body: QuizAttemptIn
) -> QuizAttemptOut:
    await _owned_concept(session, user, job_id, concept_id)
    content = await job_reads.concept_content(session, concept_id)
    quiz_content = content.get(ContentKind.quiz)
    if quiz_content is None or quiz_content.result is None:
        raise InvalidState("This concept has no quiz yet.")
    try:
        quiz = Quiz.model_validate(quiz_content.result.body)
    except ValidationError:
        raise InvalidState("This concept's quiz cannot be scored.") from None
    results = []
    for question in quiz.questions:
        chosen = sorted(set(body.answers.get(question.id, [])))
        expected = sorted(question.correct)
        results.append(
            QuestionResult(
                question_id=question.id,
                correct=chosen == expected,
                expected=expected,
                explanation=question.explanation,
            )
        )
    correct = sum(r.correct for r in results)
    score = correct / len(results)
    attempt = await learner_progress.add_quiz_attempt(
        session,
        user_id=user.id,
        concept_id=concept_id,
        quiz_version=quiz_content.result.version,
        answers=dict(body.answers),
        score=score,
    )
    out = QuizAttemptOut(
        id=attempt.id,
        quiz_version=attempt.quiz_version,
        score=score,
        correct=correct,
        total=len(results),
        results=results,
        created_at=attempt.created_at,
    )
    await session.commit()
    return out
