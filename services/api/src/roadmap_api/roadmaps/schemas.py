"""Bodies of the roadmap endpoints. Requests forbid unknown fields (no mass assignment)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from roadmap_core.domain import (
    ContentKind,
    ItemStatus,
    JobStatus,
    JobStep,
    LearnerStatus,
    ReviewDecision,
    RoadmapRequest,
)
from roadmap_core.progress import Progress, Usage
from roadmap_core.text import STORABLE

Feedback = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), STORABLE
]


class Links(BaseModel):
    self: str
    events: str
    logs: str


def links_for(job_id: uuid.UUID) -> Links:
    base = f"/api/v1/roadmaps/{job_id}"
    return Links(self=base, events=f"{base}/events", logs=f"{base}/logs")


class JobAccepted(BaseModel):
    id: uuid.UUID
    status: JobStatus
    links: Links


class ReviewOut(BaseModel):
    round: int
    decision: ReviewDecision
    feedback: str | None
    created_at: datetime
    decided_at: datetime | None


class ItemState(BaseModel):
    status: ItemStatus
    version: int = Field(description="latest stored version (0: none yet)")
    error: str | None = None


class ConceptNode(BaseModel):
    id: uuid.UUID
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
    content: dict[ContentKind, ItemState]


class ModuleNode(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    concepts: list[ConceptNode]


class StageNode(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    modules: list[ModuleNode]


class FrameworkOut(BaseModel):
    title: str | None
    summary: str | None
    stages: list[StageNode]


class RoadmapSummary(BaseModel):
    id: uuid.UUID
    status: JobStatus
    current_step: JobStep
    title: str | None
    goal: str
    progress: Progress
    created_at: datetime
    updated_at: datetime
    links: Links


class AdminRoadmapSummary(RoadmapSummary):
    owner_id: uuid.UUID
    owner_email: str | None


class Learning(BaseModel):
    """Your progress through the roadmap's concepts (what you marked, what you scored)."""

    concepts: int = Field(ge=0, description="concepts in the roadmap")
    done: int = Field(ge=0, description="concepts you marked `done`")
    in_progress: int = Field(ge=0, description="concepts you marked `in_progress`")
    completion: float = Field(ge=0, le=1, description="`done` / `concepts` (0 without concepts)")
    quizzes_attempted: int = Field(ge=0, description="concepts whose quiz you attempted")
    average_best_score: float | None = Field(
        ge=0,
        le=1,
        description="mean of your best score per attempted quiz (none attempted: null)",
    )


class RoadmapDetail(RoadmapSummary):
    summary: str | None
    error: str | None
    request: RoadmapRequest = Field(description="the request as submitted")
    usage: Usage
    started_at: datetime | None
    finished_at: datetime | None
    review: ReviewOut | None
    framework: FrameworkOut | None
    learning: Learning


class RoadmapPage(BaseModel):
    items: list[RoadmapSummary]
    next_cursor: str | None


class AdminRoadmapPage(BaseModel):
    items: list[AdminRoadmapSummary]
    next_cursor: str | None


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool = Field(strict=True)
    feedback: Feedback | None = None

    @model_validator(mode="after")
    def _feedback_when_rejecting(self) -> Self:
        if not self.approve and not self.feedback:
            raise ValueError("feedback is required when not approving")
        return self
