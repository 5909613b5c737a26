"""The ``details`` of execution-log events: one pydantic model per kind of event.

Every producer (the API's audit events, the content worker's pipeline, planning, items,
finalisation and reconciler) passes one of these models to
:func:`roadmap_core.logship.emit`; the API serves the stored JSON back through the same
models (``LogOut.details`` in the OpenAPI document), discriminated by ``kind``.

Adding a kind is a change of this file only: write a ``LogDetailsBase`` subclass with a
``kind: Literal["…"]`` of its own and add it to :data:`LogDetails`. A test refuses a
subclass that is missing from the union. The API contract gains a schema (a minor version,
docs/api.md).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from roadmap_core.domain import ContentKind, JobStatus
from roadmap_core.progress import FailedItem, Progress

UNTYPED_KIND: Final = "untyped"


# The API always sends every field (null where unset), `kind` included: the document says
# so, which also makes the kinds of the union mutually exclusive for a validator.
_CONFIG = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class LogDetailsBase(BaseModel):
    """What every kind carries besides its own fields."""

    model_config = _CONFIG

    trace_id: str | None = Field(
        default=None, description="OpenTelemetry trace id of the code that logged the event"
    )
    span_id: str | None = Field(default=None, description="its span id")


class LlmCallDetails(LogDetailsBase):
    """One response of the LLM endpoint (category `llm`); `step` names the pipeline step."""

    kind: Literal["llm_call"] = "llm_call"
    model: str
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cost_usd: str = Field(description="what the call cost, in US dollars (a decimal number)")
    outcome: str = Field(
        description="`ok`, or why the output was rejected (e.g. `malformed_output`)"
    )
    item_id: uuid.UUID | None = Field(default=None, description="the content item it was for")
    request_id: str | None = Field(default=None, description="the LLM provider's request id")


class StepInfo(BaseModel):
    """What a pipeline step reports about itself (each field only where it applies)."""

    round: int | None = Field(default=None, ge=0, description="validation or repair round")
    errors: list[str] | None = Field(default=None, description="validation errors")
    concepts: int | None = Field(default=None, ge=0, description="concepts in the framework")
    content_kind: ContentKind | None = Field(default=None, description="content generated")
    concept: str | None = Field(default=None, description="key of the concept in the framework")


class StepStartedDetails(StepInfo, LogDetailsBase):
    """A pipeline step started; `step` names it."""

    kind: Literal["step_started"] = "step_started"


class StepFinishedDetails(StepInfo, LogDetailsBase):
    """A pipeline step ended (`ok` false: it failed), with its LLM usage."""

    kind: Literal["step_finished"] = "step_finished"
    ok: bool
    error: str | None = Field(default=None, description="why it failed")
    llm_calls: int = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cost_usd: str = Field(description="US dollars (a decimal number)")


class ItemFailedDetails(LogDetailsBase):
    """A content item failed for good (the message says why)."""

    kind: Literal["item_failed"] = "item_failed"
    item_id: uuid.UUID
    content_kind: ContentKind


class PlanStoredDetails(LogDetailsBase):
    """The framework was stored and content generation starts."""

    kind: Literal["plan_stored"] = "plan_stored"
    concepts: int = Field(ge=0)
    repair_rounds: int = Field(ge=0)


class PlanReadyForReviewDetails(LogDetailsBase):
    """The framework waits for the user's review."""

    kind: Literal["plan_ready_for_review"] = "plan_ready_for_review"
    concepts: int = Field(ge=0)
    repair_rounds: int = Field(ge=0)
    round: int = Field(ge=1, description="review round")


class PlanFailedDetails(LogDetailsBase):
    """Planning failed (the message says why)."""

    kind: Literal["plan_failed"] = "plan_failed"


class JobFinishedDetails(LogDetailsBase):
    """Every item finished: the roadmap's final status and the items that failed."""

    kind: Literal["job_finished"] = "job_finished"
    status: JobStatus
    failed_items: list[FailedItem]
    progress: Progress


class JobCancelledDetails(LogDetailsBase):
    """The content worker stopped a cancelled roadmap."""

    kind: Literal["job_cancelled"] = "job_cancelled"


class RetryStartedDetails(LogDetailsBase):
    """The content worker re-queued the failed items of these many concepts."""

    kind: Literal["retry_started"] = "retry_started"
    concepts: int = Field(ge=0)


class ReconcilerPassDetails(LogDetailsBase):
    """A reconciler pass that re-sent lost work (category `system`, no roadmap)."""

    kind: Literal["reconciler_pass"] = "reconciler_pass"
    plan_jobs: list[uuid.UUID] = Field(description="roadmaps whose planning was re-sent")
    revisions: list[uuid.UUID] = Field(description="roadmaps whose revision was re-sent")
    generate_messages: int = Field(ge=0, description="content batches re-sent")
    finalized: list[uuid.UUID] = Field(description="roadmaps it finished")


class ResourceSearchDetails(LogDetailsBase):
    """A web search for a concept's resources (category `content`)."""

    kind: Literal["resource_search"] = "resource_search"
    query: str
    provider: str = Field(description="`brave` or `searxng`")
    result_count: int = Field(ge=0, description="results the provider returned")
    concept: str = Field(description="key of the concept in the framework")


class DroppedLink(BaseModel):
    url: str
    error: str | None = Field(description="why its check failed")


class LinkCheckDetails(LogDetailsBase):
    """The search results of a concept were checked; those that failed were dropped."""

    kind: Literal["link_check"] = "link_check"
    concept: str = Field(description="key of the concept in the framework")
    checked: int = Field(ge=0)
    offered: int = Field(ge=0, description="results that answered, offered to the model")
    dropped: list[DroppedLink] = Field(max_length=10, description="the first ones dropped")


class ResourcesDroppedDetails(LogDetailsBase):
    """URLs the model returned that were not among the checked results (not stored)."""

    kind: Literal["resources_dropped"] = "resources_dropped"
    concept: str = Field(description="key of the concept in the framework")
    urls: list[str] = Field(max_length=10)


class LinkRecheckDetails(LogDetailsBase):
    """The periodic re-check found dead links of a concept's resources."""

    kind: Literal["link_recheck"] = "link_recheck"
    item_id: uuid.UUID
    version: int = Field(ge=1, description="the resources version it stored")
    dead: int = Field(ge=0, description="links that did not answer")
    replaced: int = Field(ge=0, description="of those, replaced from a new search")
    query: str | None = Field(default=None, description="the search for replacements")
    provider: str | None = None
    result_count: int | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, description="why the search failed")


class ApiActionDetails(LogDetailsBase):
    """An action of a user through the API (category `api`)."""

    user_id: uuid.UUID


class RoadmapSubmittedDetails(ApiActionDetails):
    kind: Literal["roadmap_submitted"] = "roadmap_submitted"
    review: bool = Field(description="the plan waits for the user's review")


class RoadmapCancelledDetails(ApiActionDetails):
    kind: Literal["roadmap_cancelled"] = "roadmap_cancelled"


class RoadmapDeletedDetails(ApiActionDetails):
    kind: Literal["roadmap_deleted"] = "roadmap_deleted"
    was_active: bool = Field(description="it was still planning or generating")


class ItemsRetriedDetails(ApiActionDetails):
    kind: Literal["items_retried"] = "items_retried"
    items: int = Field(ge=0, description="failed items queued again")


class PlanReviewedDetails(ApiActionDetails):
    kind: Literal["plan_reviewed"] = "plan_reviewed"
    round: int = Field(ge=1)
    approve: bool


class RegenerationRequestedDetails(ApiActionDetails):
    kind: Literal["regeneration_requested"] = "regeneration_requested"
    kinds: list[ContentKind]
    with_instructions: bool


class ChatMessageReceivedDetails(ApiActionDetails):
    """A learner asked the roadmap's mentor (the answer is written by the chat worker)."""

    kind: Literal["chat_message_received"] = "chat_message_received"
    message_id: uuid.UUID
    answer_id: uuid.UUID
    chars: int = Field(ge=0, description="length of the question")


class ChatAnsweredDetails(LogDetailsBase):
    """The chat worker ended an answer (category `workflow`, step `chat`)."""

    kind: Literal["chat_answered"] = "chat_answered"
    message_id: uuid.UUID
    status: Literal["done", "failed"]
    pieces: int = Field(ge=0, description="delta events it streamed")
    history_messages: int = Field(ge=0, description="earlier messages in its prompt")
    error: str | None = None


LogDetails = Annotated[
    LlmCallDetails
    | StepStartedDetails
    | StepFinishedDetails
    | ItemFailedDetails
    | PlanStoredDetails
    | PlanReadyForReviewDetails
    | PlanFailedDetails
    | JobFinishedDetails
    | JobCancelledDetails
    | RetryStartedDetails
    | ReconcilerPassDetails
    | ResourceSearchDetails
    | LinkCheckDetails
    | ResourcesDroppedDetails
    | LinkRecheckDetails
    | RoadmapSubmittedDetails
    | RoadmapCancelledDetails
    | RoadmapDeletedDetails
    | ItemsRetriedDetails
    | PlanReviewedDetails
    | RegenerationRequestedDetails
    | ChatMessageReceivedDetails
    | ChatAnsweredDetails,
    Field(discriminator="kind"),
]
"""What a producer may log: every kind of ``details``."""


class TruncatedDetails(LogDetailsBase):
    """Details larger than `LOG_DETAILS_MAX_BYTES`, replaced when they were logged."""

    kind: Literal["truncated"] = "truncated"
    original_kind: str = Field(description="the kind of the details that were replaced")
    original_bytes: int = Field(ge=0, description="their size as JSON")
    preview: str = Field(description="the start of their JSON text")


class UntypedDetails(BaseModel):
    """Details stored before their kind was declared (or not of its shape any more)."""

    model_config = _CONFIG

    kind: Literal["untyped"] = "untyped"
    data: dict[str, Any] = Field(
        description="Free-form: the details as they were stored. Written by versions before"
        " log details were typed (API 2.1.0); new events always have a declared kind."
    )


StoredLogDetails = Annotated[
    LogDetails | TruncatedDetails | UntypedDetails, Field(discriminator="kind")
]
"""What the API serves: a producer's kind, a truncation marker, or an old untyped row."""

_PRODUCED: TypeAdapter[LogDetails] = TypeAdapter(LogDetails)
_STORED: TypeAdapter[StoredLogDetails] = TypeAdapter(StoredLogDetails)


def kinds_of(union: Any) -> dict[str, type[BaseModel]]:
    """``{kind: model}`` of :data:`LogDetails` or :data:`StoredLogDetails`."""
    found: dict[str, type[BaseModel]] = {}
    for member in get_args(get_args(union)[0]):
        if get_origin(member) is Annotated:
            found |= kinds_of(member)
        else:
            found[str(member.model_fields["kind"].default)] = member
    return found


def parse_produced(data: Any) -> LogDetails:
    """Validate details as a producer must have written them; raises ``ValidationError``."""
    return _PRODUCED.validate_python(data)


def parse_stored(data: Any) -> StoredLogDetails:
    """Read a stored row's details. Never raises: what fits no kind is ``untyped``."""
    if isinstance(data, dict) and data.get("kind") not in (None, UNTYPED_KIND):
        try:
            return _STORED.validate_python(data)
        except ValidationError:
            pass
    return UntypedDetails(data=data if isinstance(data, dict) else {"value": data})
