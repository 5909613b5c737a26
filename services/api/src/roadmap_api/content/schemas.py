"""Bodies of the concept content, regeneration and learner-progress endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, field_validator

from roadmap_api.roadmaps.schemas import Links
from roadmap_core.domain import ContentKind, ItemStatus, Quiz, ResourceList, Tutorial
from roadmap_core.text import STORABLE

QuestionId = Annotated[str, StringConstraints(min_length=1, max_length=32), STORABLE]


class _Version(BaseModel):
    version: int = Field(ge=1)
    model: str = Field(description="the LLM model that wrote it")
    instructions: str | None = Field(description="regeneration instructions it was asked with")
    created_at: datetime


class TutorialVersion(_Version):
    body: Tutorial


class ResourcesVersion(_Version):
    body: ResourceList


class QuizVersion(_Version):
    body: Quiz


class _Item(BaseModel):
    status: ItemStatus
    version: int = Field(description="latest stored version (0: none yet)")
    versions: list[int] = Field(description="every stored version")
    error: str | None


class TutorialItem(_Item):
    kind: Literal[ContentKind.tutorial]
    result: TutorialVersion | None = Field(description="the latest version, or the one asked for")


class ResourcesItem(_Item):
    kind: Literal[ContentKind.resources]
    result: ResourcesVersion | None = Field(description="the latest version, or the one asked for")


class QuizItem(_Item):
    kind: Literal[ContentKind.quiz]
    result: QuizVersion | None = Field(description="the latest version, or the one asked for")


ContentItemOut = Annotated[TutorialItem | ResourcesItem | QuizItem, Field(discriminator="kind")]
CONTENT_ITEM: TypeAdapter[TutorialItem | ResourcesItem | QuizItem] = TypeAdapter(ContentItemOut)


class ConceptOut(BaseModel):
    id: uuid.UUID
    roadmap_id: uuid.UUID
    key: str
    title: str
    summary: str
    difficulty: int
    estimated_hours: float
    prerequisites: list[str]
    completed: bool
    content: dict[ContentKind, ContentItemOut]


class RegenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[ContentKind] = Field(min_length=1, max_length=3)
    instructions: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), STORABLE
        ]
        | None
    ) = None

    @field_validator("kinds")
    @classmethod
    def _unique(cls, kinds: list[ContentKind]) -> list[ContentKind]:
        return list(dict.fromkeys(kinds))


class RegenerateAccepted(BaseModel):
    id: uuid.UUID
    concept_id: uuid.UUID
    kinds: list[ContentKind]
    status: str
    links: Links


class ProgressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    completed: bool = Field(strict=True)


class ProgressOut(BaseModel):
    concept_id: uuid.UUID
    completed: bool
    completed_at: datetime | None
    updated_at: datetime


class QuizAttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[QuestionId, list[Annotated[int, Field(strict=True, ge=0, le=7)]]] = Field(
        max_length=20, description="question id → indexes of the chosen options"
    )


class QuestionResult(BaseModel):
    question_id: str
    correct: bool
    expected: list[int]
    explanation: str


class QuizAttemptOut(BaseModel):
    id: uuid.UUID
    quiz_version: int
    score: float = Field(ge=0, le=1, description="share of questions answered correctly")
    correct: int
    total: int
    results: list[QuestionResult]
    created_at: datetime
