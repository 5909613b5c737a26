"""Domain models shared by every service: requests, framework, content, statuses."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from roadmap_core.text import STORABLE


class Level(StrEnum):
    beginner = "beginner"
    intermediate = "intermediate"
    advanced = "advanced"


class JobStatus(StrEnum):
    queued = "queued"
    planning = "planning"
    awaiting_review = "awaiting_review"
    generating = "generating"
    completed = "completed"
    partial_failure = "partial_failure"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_JOB_STATUSES

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_JOB_STATUSES


TERMINAL_JOB_STATUSES = frozenset(
    {JobStatus.completed, JobStatus.partial_failure, JobStatus.failed, JobStatus.cancelled}
)
ACTIVE_JOB_STATUSES = frozenset(
    {JobStatus.queued, JobStatus.planning, JobStatus.awaiting_review, JobStatus.generating}
)


class JobStep(StrEnum):
    queued = "queued"
    intent_analysis = "intent_analysis"
    curriculum_design = "curriculum_design"
    validation = "validation"
    repair = "repair"
    awaiting_review = "awaiting_review"
    revision = "revision"
    content_generation = "content_generation"
    done = "done"


class ItemStatus(StrEnum):
    pending = "pending"  # created with the framework, not yet handed to a worker
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class ContentKind(StrEnum):
    tutorial = "tutorial"
    resources = "resources"
    quiz = "quiz"


class LearnerStatus(StrEnum):
    """Where a learner says they are with one concept (set by them, never by a worker)."""

    not_started = "not_started"
    in_progress = "in_progress"
    done = "done"


class ReviewDecision(StrEnum):
    pending = "pending"  # framework proposed, waiting for the learner
    approved = "approved"
    changes_requested = "changes_requested"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogCategory(StrEnum):
    workflow = "workflow"
    llm = "llm"
    content = "content"
    review = "review"
    system = "system"
    api = "api"


Short = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), STORABLE
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000), STORABLE]
ConceptKey = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
]
LanguageTag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}$"),
]


MIN_WEEKLY_HOURS = 1
MAX_WEEKLY_HOURS = 80
MAX_WEEKS = 104


class RoadmapRequest(BaseModel):
    """What a learner asks for. Stored verbatim on the job row; never rewritten.

    Bounds are checked here, at the door, so that nothing is accepted that no plan can
    meet (an hour budget of 5e-324 h used to be planned, and fail, at the LLM's expense):
    at least an hour a week. Numbers and booleans are strict (``"6"``, ``true`` as a
    number, ``0`` as a boolean are refused): what the schema says is what is accepted.
    """

    model_config = ConfigDict(extra="forbid")

    goal: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500), STORABLE
    ]
    level: Level
    weekly_hours: float = Field(
        strict=True,
        ge=MIN_WEEKLY_HOURS,
        le=MAX_WEEKLY_HOURS,
        description=f"hours of study per week, {MIN_WEEKLY_HOURS} to {MAX_WEEKLY_HOURS}",
    )
    weeks: int = Field(strict=True, ge=1, le=MAX_WEEKS, description=f"1 to {MAX_WEEKS}")
    language: LanguageTag = "en"
    learning_style: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), STORABLE] | None
    ) = None
    background: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), STORABLE] | None
    ) = None
    review: bool = Field(
        default=False, strict=True, description="pause for your approval of the plan"
    )

    @property
    def hour_budget(self) -> float:
        return self.weekly_hours * self.weeks


class LLMModel(BaseModel):
    """Base for structures the LLM returns: untrusted, so forbid extras and bound sizes."""

    model_config = ConfigDict(extra="forbid")


class IntentAnalysis(LLMModel):
    topic: Short
    domain: Short
    goals: list[Short] = Field(min_length=1, max_length=10)
    key_skills: list[Short] = Field(default_factory=list, max_length=20)
    assumed_background: Text = ""
    notes: Text = ""


class Concept(LLMModel):
    id: ConceptKey
    title: Short
    summary: Text
    difficulty: int = Field(ge=1, le=5)
    estimated_hours: float = Field(gt=0, le=200)
    prerequisites: list[ConceptKey] = Field(default_factory=list, max_length=20)


class Module(LLMModel):
    title: Short
    description: Text = ""
    concepts: list[Concept] = Field(max_length=50)


class Stage(LLMModel):
    title: Short
    description: Text = ""
    modules: list[Module] = Field(max_length=20)


class Framework(LLMModel):
    """A curriculum: stages → modules → concepts. Validity beyond shape is checked separately."""

    title: Short
    summary: Text = ""
    stages: list[Stage] = Field(max_length=50)

    def concepts(self) -> list[Concept]:
        return [c for s in self.stages for m in s.modules for c in m.concepts]


class Tutorial(LLMModel):
    title: Short
    markdown: Annotated[str, StringConstraints(min_length=1, max_length=60_000), STORABLE]
    estimated_minutes: int = Field(ge=1, le=600)


class ResourceType(StrEnum):
    article = "article"
    video = "video"
    book = "book"
    course = "course"
    documentation = "documentation"
    exercise = "exercise"
    tool = "tool"
    other = "other"


class Resource(LLMModel):
    title: Short
    url: AnyHttpUrl
    type: ResourceType
    description: Text = ""


class ResourceList(LLMModel):
    resources: list[Resource] = Field(min_length=1, max_length=20)


class LinkStatus(StrEnum):
    ok = "ok"  # answered 2xx when last checked
    dead = "dead"  # failed a re-check and no replacement was found


class LinkCheck(BaseModel):
    """What the link checker saw when it last fetched a resource's URL."""

    status: LinkStatus
    checked_at: datetime
    http_status: int | None = Field(description="status of the last hop (none: no answer)")
    final_url: str = Field(description="where the redirects ended")
    content_type: str | None = None
    page_title: str | None = Field(default=None, description="the page's <title>, if HTML")
    error: str | None = Field(default=None, description="why the last check failed")


class CheckedResource(Resource):
    """A resource the model chose among checked search results, with its check."""

    model_config = ConfigDict(extra="ignore")

    # None only in content stored before links were searched and checked.
    link: LinkCheck | None = None


class CheckedResourceList(BaseModel):
    """The stored resources of a concept: where they were found and how they checked."""

    resources: list[CheckedResource] = Field(max_length=20)
    search_query: str | None = None
    search_provider: str | None = None


class QuestionType(StrEnum):
    single_choice = "single_choice"
    multiple_choice = "multiple_choice"
    true_false = "true_false"


class QuizQuestion(LLMModel):
    id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32), STORABLE
    ]
    type: QuestionType
    prompt: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), STORABLE
    ]
    options: list[Short] = Field(min_length=2, max_length=8)
    correct: list[int] = Field(min_length=1, max_length=8)
    explanation: Text

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if any(i < 0 or i >= len(self.options) for i in self.correct):
            raise ValueError("correct answer index out of range")
        if len(set(self.correct)) != len(self.correct):
            raise ValueError("duplicate correct answer index")
        if self.type is QuestionType.true_false and len(self.options) != 2:
            raise ValueError("true/false questions have exactly two options")
        if self.type is not QuestionType.multiple_choice and len(self.correct) != 1:
            raise ValueError(f"{self.type} questions have exactly one correct answer")
        return self


class Quiz(LLMModel):
    questions: list[QuizQuestion] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("quiz question ids must be unique")
        return self


# What the model is asked for, per kind.
CONTENT_MODELS: dict[ContentKind, type[LLMModel]] = {
    ContentKind.tutorial: Tutorial,
    ContentKind.resources: ResourceList,
    ContentKind.quiz: Quiz,
}
# What is stored per kind: resources are stored with their checks (CheckedResourceList).
STORED_CONTENT_MODELS: dict[ContentKind, type[BaseModel]] = {
    ContentKind.tutorial: Tutorial,
    ContentKind.resources: CheckedResourceList,
    ContentKind.quiz: Quiz,
}
