"""``/api/v1/roadmaps/{id}/concepts/{concept_id}``: content, regeneration, learner progress."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from roadmap_api.auth.deps import CurrentUser
from roadmap_api.content import service
from roadmap_api.content.schemas import (
    ConceptOut,
    ProgressIn,
    ProgressOut,
    QuizAttemptIn,
    QuizAttemptOut,
    QuizAttemptPage,
    RegenerateAccepted,
    RegenerateIn,
)
from roadmap_api.db import ServicesDep, SessionDep
from roadmap_api.responses import AUTH_ERRORS, errors
from roadmap_core.text import STORABLE

router = APIRouter(prefix="/api/v1/roadmaps/{roadmap_id}/concepts", tags=["content"])

ID_ERRORS = {**AUTH_ERRORS, **errors(404, 422)}

Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page"), STORABLE
]


@router.get("/{concept_id}", operation_id="concepts_get", responses=ID_ERRORS)
async def get_concept(
    roadmap_id: uuid.UUID,
    concept_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> ConceptOut:
    """The concept with its latest tutorial, resources and quiz (``?version=`` for older ones)."""
    return await service.concept(session, user, roadmap_id, concept_id, version)


@router.post(
    "/{concept_id}/regenerate",
    operation_id="concepts_regenerate",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**ID_ERRORS, **errors(409, 413, 429)},
)
async def regenerate_concept(
    roadmap_id: uuid.UUID,
    concept_id: uuid.UUID,
    body: RegenerateIn,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> RegenerateAccepted:
    """Generate new versions of some of the concept's content; older versions are kept."""
    return await service.regenerate(session, services, user, roadmap_id, concept_id, body)


@router.put(
    "/{concept_id}/progress",
    operation_id="concept_progress_set",
    responses={**ID_ERRORS, **errors(413)},
)
async def set_concept_progress(
    roadmap_id: uuid.UUID,
    concept_id: uuid.UUID,
    body: ProgressIn,
    user: CurrentUser,
    session: SessionDep,
) -> ProgressOut:
    """Say where you are with the concept: `not_started`, `in_progress` or `done`."""
    return await service.set_progress(session, user, roadmap_id, concept_id, body.status)


@router.post(
    "/{concept_id}/quiz/attempts",
    operation_id="quiz_attempts_create",
    status_code=status.HTTP_201_CREATED,
    responses={**ID_ERRORS, **errors(409, 413)},
)
async def attempt_quiz(
    roadmap_id: uuid.UUID,
    concept_id: uuid.UUID,
    body: QuizAttemptIn,
    user: CurrentUser,
    session: SessionDep,
) -> QuizAttemptOut:
    """Answer the concept's latest quiz (one entry per question): your score, and per
    question whether you were right, the correct options and the explanation. 409 until
    the concept has a quiz, or when `quiz_version` is not its latest."""
    return await service.attempt_quiz(session, user, roadmap_id, concept_id, body)


@router.get(
    "/{concept_id}/quiz/attempts",
    operation_id="quiz_attempts_list",
    responses={**ID_ERRORS, **errors(400)},
)
async def list_quiz_attempts(
    roadmap_id: uuid.UUID,
    concept_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> QuizAttemptPage:
    """Your attempts at the concept's quizzes, newest first."""
    return await service.quiz_attempts(
        session, user, roadmap_id, concept_id, limit=limit, cursor=cursor
    )
