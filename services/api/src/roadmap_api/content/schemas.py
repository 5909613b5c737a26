"""Bodies of the concept content, regeneration and learner-progress endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)

from roadmap_api.roadmaps.schemas import Links
from roadmap_core.domain import (
    CheckedResource,
    ContentKind,
    ItemStatus,
    LearnerStatus,
    QuestionType,
    Tutorial,
)
from roadmap_core.text import STORABLE

# Bounds of the stored quizzes (roadmap_core.domain.Quiz): no answer can exceed them.
MAX_QUESTIONS = 20
MAX_OPTIONS = 8


class _Version(BaseModel):
    version: int = Field(ge=1)
    model: str = Field(description="the LLM model that wrote it")
    instructions: str | None = Field(description="regeneration instructions it was asked with")
    created_at: datetime


class TutorialVersion(_Version):
    body: Tutorial


class Resource(CheckedResource):
    """A learning resource chosen from web search results, with its link check."""


class ResourceList(BaseModel):
    """A concept's resources (the contract's name for the domain's CheckedResourceList)."""

    resources: list[Resource] = Field(max_length=20)
    search_query: str | None = Field(default=None, description="the web search they came from")
    search_provider: str | None = Field(default=None, description="`brave` or `searxng`")


class ResourcesVersion(_Version):
    body: ResourceList = Field(
        description="resources chosen from web search results, each with its link check"
        " (`link`: `ok` or `dead`, HTTP status, final URL, content type, page title,"
        " `checked_at`; null only for content stored before links were checked)"
    )


class QuizQuestionOut(BaseModel):
    """A question as the learner sees it before answering: no correct options, no
    explanation (those come back with an attempt)."""

    id: str
    type: QuestionType
    prompt: str
    options: list[str]


class QuizOut(BaseModel):
    questions: list[QuizQuestionOut]


class QuizVersion(_Version):
    body: QuizOut


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
    progress: LearnerStatus = Field(description="where you say you are with this concept")
    completed: bool = Field(description="`progress` is `done`")
    quiz_attempts: int = Field(ge=0, description="your attempts at its quiz")
    best_quiz_score: float | None = Field(
        ge=0, le=1, description="your best attempt's score (none yet: null)"
    )
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

    status: LearnerStatus


class ProgressOut(BaseModel):
    concept_id: uuid.UUID
    status: LearnerStatus
    completed: bool = Field(description="`status` is `done`")
    completed_at: datetime | None = Field(description="when it was marked done (while it is)")
    updated_at: datetime


OptionIndex = Annotated[int, Field(strict=True, ge=0, lt=MAX_OPTIONS)]


def _one_or_many(value: Any) -> Any:
    # A bare index stands for a list of one; anything else is validated as a list (a
    # boolean is not an index: strict ints refuse it inside the list).
    return [value] if type(value) is int else value


Answer = Annotated[
    list[OptionIndex],
    BeforeValidator(
        _one_or_many,
        json_schema_input_type=OptionIndex
        | Annotated[list[OptionIndex], Field(min_length=1, max_length=MAX_OPTIONS)],
    ),
    Field(
        min_length=1,
        max_length=MAX_OPTIONS,
        title="Answer",
        description="the chosen option's index; for a `multiple_choice` question also a"
        " list of the chosen indexes",
    ),
]


class QuizAttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: list[Answer] = Field(
        min_length=1,
        max_length=MAX_QUESTIONS,
        description="one entry per question of the quiz, in its order",
    )
    quiz_version: int | None = Field(
        default=None,
        strict=True,
        description="the version of the quiz you answered (1 or more; the latest when left"
        " out): an older one answers 409, so answers are never scored against questions you"
        " did not see",
    )

    @field_validator("quiz_version")
    @classmethod
    def _a_version(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 100_000:
            raise ValueError("a quiz version is 1 or more")
        return value


class QuestionResult(BaseModel):
    question_id: str
    chosen: list[int] = Field(description="the option indexes you chose")
    correct: bool = Field(description="whether you chose exactly the correct options")
    correct_options: list[int] = Field(description="indexes of the correct options")
    explanation: str


class QuizAttemptOut(BaseModel):
    id: uuid.UUID
    concept_id: uuid.UUID
    quiz_version: int
    score: float = Field(ge=0, le=1, description="share of questions answered correctly")
    correct: int = Field(ge=0, description="questions answered correctly")
    total: int = Field(ge=0, description="questions in the quiz")
    results: list[QuestionResult] = Field(description="per question, in the quiz's order")
    created_at: datetime


class QuizAttemptPage(BaseModel):
    items: list[QuizAttemptOut] = Field(description="newest first")
    next_cursor: str | None
