"""Progress events: one bounded Redis Stream per job, read by the API's SSE endpoint.

The payload of every event type is a pydantic model here, and only here: the content
worker and the API publish these models, the API validates what it reads back before it
sends it, and the OpenAPI document describes the event stream with the same classes. A
stream entry holds two fields, ``type`` (a :class:`ProgressType`) and ``data`` (the
payload as JSON); the SSE event carries them as ``event:`` and ``data:``, and the entry id
as ``id:``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from roadmap_core.domain import (
    ContentKind,
    Framework,
    ItemStatus,
    JobStatus,
    JobStep,
    ReviewDecision,
)


class ProgressType(StrEnum):
    snapshot = "snapshot"
    status = "status"
    step = "step"
    item = "item"
    review_required = "review_required"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in {ProgressType.completed, ProgressType.failed, ProgressType.cancelled}


class Progress(BaseModel):
    """Content items of a roadmap by state: the same shape in every response and event."""

    total: int = Field(ge=0, description="content items (three per concept)")
    done: int = Field(ge=0, description="generated and stored")
    failed: int = Field(ge=0, description="failed for good (a retry can queue them again)")
    pending: int = Field(ge=0, description="not finished yet (pending, queued or running)")
    cancelled: int = Field(ge=0, description="stopped by a cancellation")

    @classmethod
    def from_counts(cls, counts: Mapping[ItemStatus, int] | Mapping[str, int]) -> Progress:
        """From item counts keyed by :class:`ItemStatus` value (other keys are ignored)."""

        def n(status: ItemStatus) -> int:
            return int(counts.get(status, 0))

        pending = n(ItemStatus.pending) + n(ItemStatus.queued) + n(ItemStatus.running)
        done, failed, cancelled = (
            n(ItemStatus.succeeded),
            n(ItemStatus.failed),
            n(ItemStatus.cancelled),
        )
        return cls(
            total=done + failed + pending + cancelled,
            done=done,
            failed=failed,
            pending=pending,
            cancelled=cancelled,
        )


class Usage(BaseModel):
    """LLM usage of a roadmap so far."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0, description="estimated from the model's list price")
    llm_calls: int = Field(ge=0)


class _Event(BaseModel):
    """Base of the event payloads. Readers ignore fields they do not know, so adding an
    optional field is not a breaking change (docs/api.md)."""

    event_type: ClassVar[ProgressType]


class ReviewState(BaseModel):
    round: int = Field(ge=1)
    decision: ReviewDecision
    round_id: uuid.UUID


class SnapshotEvent(_Event):
    """First event of a stream that starts without (or after a gap in) the client's history:
    the roadmap's state as stored."""

    event_type = ProgressType.snapshot
    id: uuid.UUID
    status: JobStatus
    current_step: JobStep
    title: str | None
    error: str | None
    progress: Progress
    usage: Usage
    review: ReviewState | None
    updated_at: datetime


class StatusEvent(_Event):
    """The roadmap changed status (planning started, review, approve, revise, retry, …)."""

    event_type = ProgressType.status
    status: JobStatus
    step: JobStep


class StepEvent(_Event):
    """Planning moved on to another step."""

    event_type = ProgressType.step
    step: JobStep


class ItemEvent(_Event):
    """A content item (one kind of one concept) changed state."""

    event_type = ProgressType.item
    item_id: uuid.UUID
    concept_id: uuid.UUID
    concept_key: str | None
    kind: ContentKind
    status: ItemStatus
    version: int | None = Field(default=None, description="the version stored, once stored")
    error: str | None = None
    progress: Progress


class ReviewRequiredEvent(_Event):
    """A plan waits for the learner's decision (``POST /roadmaps/{id}/review``)."""

    event_type = ProgressType.review_required
    round_id: uuid.UUID
    round: int = Field(ge=1)
    framework: Framework


class FailedItem(BaseModel):
    item_id: uuid.UUID
    concept_id: uuid.UUID
    concept_key: str
    kind: ContentKind
    error: str | None


class CompletedEvent(_Event):
    """Terminal: every item finished; ``partial_failure`` lists the ones that failed."""

    event_type = ProgressType.completed
    status: Literal[JobStatus.completed, JobStatus.partial_failure]
    failed_items: list[FailedItem]
    progress: Progress


class FailedEvent(_Event):
    """Terminal: the roadmap failed (planning could not produce a valid plan)."""

    event_type = ProgressType.failed
    status: Literal[JobStatus.failed] = JobStatus.failed
    error: str | None
    progress: Progress


class CancelledEvent(_Event):
    """Terminal: the roadmap was cancelled (or deleted) while it was active."""

    event_type = ProgressType.cancelled
    status: Literal[JobStatus.cancelled] = JobStatus.cancelled
    progress: Progress


EventData = (
    SnapshotEvent
    | StatusEvent
    | StepEvent
    | ItemEvent
    | ReviewRequiredEvent
    | CompletedEvent
    | FailedEvent
    | CancelledEvent
)

EVENT_MODELS: dict[ProgressType, type[_Event]] = {
    model.event_type: model
    for model in (
        SnapshotEvent,
        StatusEvent,
        StepEvent,
        ItemEvent,
        ReviewRequiredEvent,
        CompletedEvent,
        FailedEvent,
        CancelledEvent,
    )
}


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One decoded stream entry: its type and its payload."""

    type: ProgressType
    data: EventData


def stream_key(job_id: uuid.UUID) -> str:
    return f"roadmap:job:{job_id}:events"


def encode(data: EventData) -> dict[str, str]:
    """The stream entry's fields for ``data``."""
    return {"type": data.event_type.value, "data": data.model_dump_json()}


async def publish_progress(
    redis: Redis,
    job_id: uuid.UUID,
    data: EventData,
    *,
    maxlen: int,
    ttl_s: int,
) -> str:
    """Append ``data`` to the job's stream; returns the stream entry id (the SSE id)."""
    return (await publish_progress_events(redis, job_id, [data], maxlen=maxlen, ttl_s=ttl_s))[0]


async def publish_progress_events(
    redis: Redis,
    job_id: uuid.UUID,
    events: Sequence[EventData],
    *,
    maxlen: int,
    ttl_s: int,
) -> list[str]:
    """Append ``events`` to the job's stream, in order, in one round trip; returns their
    entry ids."""
    if not events:
        return []
    key = stream_key(job_id)
    async with redis.pipeline(transaction=False) as pipe:
        for data in events:
            pipe.xadd(key, encode(data), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        pipe.expire(key, ttl_s)
        *entry_ids, _ = await pipe.execute()
    return [e.decode() if isinstance(e, bytes) else str(e) for e in entry_ids]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_entry(fields: Mapping[Any, Any]) -> ProgressEvent:
    """A stream entry back into its model; raises ``ValueError`` for one that is not valid."""
    decoded = {_text(k): _text(v) for k, v in fields.items()}
    type_ = ProgressType(decoded["type"])
    data = EVENT_MODELS[type_].model_validate_json(decoded["data"])
    return ProgressEvent(type_, cast(EventData, data))
