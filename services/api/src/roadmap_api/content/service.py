"""A concept's content (any stored version), its regeneration, and the learner's progress."""

from __future__ import annotations

import uuid
from typing import Any

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
    QuizAttemptPage,
    RegenerateAccepted,
    RegenerateIn,
)
from roadmap_api.errors import BadRequest, InvalidInput, InvalidState, NotFound
from roadmap_api.roadmaps import announce
from roadmap_api.roadmaps.schemas import links_for
from roadmap_api.roadmaps.service import locked_job, owned_job
from roadmap_api.state import AppServices
from roadmap_core.domain import (
    ContentKind,
    JobStatus,
    JobStep,
    LearnerStatus,
    QuestionType,
    Quiz,
    QuizQuestion,
)
from roadmap_core.logdetails import RegenerationRequestedDetails
from roadmap_db.models import Concept, QuizAttempt, User
from roadmap_db.repositories import job_lifecycle, job_reads, learner_progress
from roadmap_db.repositories.cursor import InvalidCursor

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
    marks = await learner_progress.progress_for_job(session, user_id=user.id, job_id=job_id)
    mark = marks.get(found.id)
    status = LearnerStatus(mark.status) if mark is not None else LearnerStatus.not_started
    scores = await learner_progress.concept_quiz_scores(
        session, user_id=user.id, concept_id=found.id
    )
    return ConceptOut(
        id=found.id,
        roadmap_id=job_id,
        key=found.key,
        title=found.title,
        summary=found.summary,
        difficulty=found.difficulty,
        estimated_hours=found.estimated_hours,
        prerequisites=list(found.prerequisites),
        progress=status,
        completed=status is LearnerStatus.done,
        quiz_attempts=scores.attempts if scores else 0,
        best_quiz_score=scores.best if scores else None,
        content={kind: _item(kind, c) for kind, c in content.items()},
    )


def _item(kind: ContentKind, c: job_reads.ItemContent) -> ContentItemOut:
    result = None
    if c.result is not None:
        result = {
            "version": c.result.version,
            "body": _as_learner_sees_it(kind, c.result.body),
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


def _as_learner_sees_it(kind: ContentKind, body: dict[str, Any]) -> dict[str, Any]:
    """A quiz without its answers: correct options and explanations come with an attempt."""
    if kind is not ContentKind.quiz:
        return body
    questions = body.get("questions")
    if not isinstance(questions, list):
        return body
    keep = ("id", "type", "prompt", "options")
    return {
        "questions": [{k: q[k] for k in keep if k in q} for q in questions if isinstance(q, dict)]
    }


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
        RegenerationRequestedDetails(
            user_id=user.id,
            kinds=list(body.kinds),
            with_instructions=body.instructions is not None,
        ),
        step="regenerate",
        concept_id=concept_id,
    )
    return RegenerateAccepted(
        id=job.id,
        concept_id=concept_id,
        kinds=body.kinds,
        status=JobStatus.generating.value,
        links=links_for(job.id),
    )


async def set_progress(
    session: AsyncSession,
    user: User,
    job_id: uuid.UUID,
    concept_id: uuid.UUID,
    status: LearnerStatus,
) -> ProgressOut:
    await _owned_concept(session, user, job_id, concept_id)
    row = await learner_progress.set_concept_status(
        session, user_id=user.id, concept_id=concept_id, status=status
    )
    out = ProgressOut(
        concept_id=row.concept_id,
        status=row.status,
        completed=row.status is LearnerStatus.done,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
    )
    await session.commit()
    return out


def _chosen(question_index: int, question: QuizQuestion, chosen: list[int]) -> list[int]:
    """The answer as a sorted list of option indexes; 422 when the question cannot take it."""
    loc: list[str | int] = ["body", "answers", question_index]
    if len(set(chosen)) != len(chosen):
        raise InvalidInput("An option is chosen twice.", loc=loc)
    if any(i >= len(question.options) for i in chosen):
        raise InvalidInput(
            f"Question {question.id} has {len(question.options)} options"
            f" (indexes 0 to {len(question.options) - 1}).",
            loc=loc,
        )
    if question.type is not QuestionType.multiple_choice and len(chosen) != 1:
        raise InvalidInput(f"Question {question.id} takes exactly one option.", loc=loc)
    return sorted(chosen)


async def attempt_quiz(
    session: AsyncSession, user: User, job_id: uuid.UUID, concept_id: uuid.UUID, body: QuizAttemptIn
) -> QuizAttemptOut:
    await _owned_concept(session, user, job_id, concept_id)
    content = await job_reads.concept_content(session, concept_id)
    quiz_content = content.get(ContentKind.quiz)
    if quiz_content is None or quiz_content.result is None:
        raise InvalidState("This concept has no quiz yet.")
    version = quiz_content.result.version
    if body.quiz_version is not None and body.quiz_version != version:
        raise InvalidState(
            f"The quiz was answered as version {body.quiz_version}; its latest version is"
            f" {version}. Load the concept again and answer that."
        )
    try:
        quiz = Quiz.model_validate(quiz_content.result.body)
    except ValidationError:
        raise InvalidState("This concept's quiz cannot be scored.") from None
    if len(body.answers) != len(quiz.questions):
        raise InvalidInput(
            f"The quiz has {len(quiz.questions)} questions: send one answer per question,"
            f" in order (got {len(body.answers)}).",
            loc=["body", "answers"],
        )
    chosen = [
        _chosen(i, question, answer)
        for i, (question, answer) in enumerate(zip(quiz.questions, body.answers, strict=True))
    ]
    results = [
        QuestionResult(
            question_id=question.id,
            chosen=picked,
            correct=picked == sorted(question.correct),
            correct_options=sorted(question.correct),
            explanation=question.explanation,
        )
        for question, picked in zip(quiz.questions, chosen, strict=True)
    ]
    correct = sum(r.correct for r in results)
    attempt = await learner_progress.add_quiz_attempt(
        session,
        user_id=user.id,
        concept_id=concept_id,
        quiz_version=version,
        answers=chosen,
        score=correct / len(results),
        correct=correct,
        total=len(results),
        results=[r.model_dump(mode="json") for r in results],
    )
    out = _attempt_out(attempt)
    await session.commit()
    return out


def _attempt_out(attempt: QuizAttempt) -> QuizAttemptOut:
    return QuizAttemptOut(
        id=attempt.id,
        concept_id=attempt.concept_id,
        quiz_version=attempt.quiz_version,
        score=attempt.score,
        correct=attempt.correct,
        total=attempt.total,
        results=[QuestionResult.model_validate(r) for r in attempt.results],
        created_at=attempt.created_at,
    )


async def quiz_attempts(
    session: AsyncSession,
    user: User,
    job_id: uuid.UUID,
    concept_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> QuizAttemptPage:
    await _owned_concept(session, user, job_id, concept_id)
    try:
        page = await learner_progress.list_quiz_attempts(
            session, user_id=user.id, concept_id=concept_id, limit=limit, cursor=cursor
        )
    except InvalidCursor:
        raise BadRequest("Malformed cursor.") from None
    return QuizAttemptPage(
        items=[_attempt_out(a) for a in page.attempts], next_cursor=page.next_cursor
    )
