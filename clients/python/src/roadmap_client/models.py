"""Models of the Roadmap Agent API, generated from services/api/openapi.json by
datamodel-code-generator: do not edit; run `uv run roadmap openapi` after an API change.
"""

from __future__ import annotations

# ruff: noqa

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AnyUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    RootModel,
    SecretStr,
)


class Alive(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[Literal["ok"], Field(title="Status")] = "ok"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    name: Annotated[str, Field(max_length=100, min_length=1, pattern="^[^\\u0000]*$", title="Name")]


class ApiKeyCreated(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    prefix: Annotated[
        str,
        Field(
            description="the first characters of the key, to recognise it",
            title="Prefix",
        ),
    ]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    last_used_at: Annotated[AwareDatetime | None, Field(title="Last Used At")]
    revoked_at: Annotated[AwareDatetime | None, Field(title="Revoked At")]
    key: Annotated[str, Field(description="the full key; shown only in this response", title="Key")]


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    prefix: Annotated[
        str,
        Field(
            description="the first characters of the key, to recognise it",
            title="Prefix",
        ),
    ]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    last_used_at: Annotated[AwareDatetime | None, Field(title="Last Used At")]
    revoked_at: Annotated[AwareDatetime | None, Field(title="Revoked At")]


class GrantType(RootModel[str]):
    root: Annotated[str, Field(pattern="^password$", title="Grant Type")]


class BodyAuthTokenCreate(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    username: Annotated[
        str,
        Field(
            description="the email",
            max_length=320,
            min_length=1,
            pattern="^[^\\u0000]*$",
            title="Username",
        ),
    ]
    password: Annotated[str, Field(max_length=128, min_length=1, title="Password")]
    grant_type: Annotated[GrantType | None, Field(title="Grant Type")] = None
    scope: Annotated[str | None, Field(max_length=200, pattern="^[^\\u0000]*$", title="Scope")] = ""


class ChatAnsweredDetails(BaseModel):
    """
    The chat worker ended an answer (category `workflow`, step `chat`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["chat_answered"], Field(title="Kind")]
    message_id: Annotated[UUID, Field(title="Message Id")]
    status: Annotated[Literal["done", "failed"], Field(title="Status")]
    pieces: Annotated[int, Field(description="delta events it streamed", ge=0, title="Pieces")]
    history_messages: Annotated[
        int,
        Field(description="earlier messages in its prompt", ge=0, title="History Messages"),
    ]
    error: Annotated[str | None, Field(title="Error")]


class ChatLinks(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    messages: Annotated[str, Field(title="Messages")]
    events: Annotated[str, Field(title="Events")]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    content: Annotated[
        str,
        Field(
            description="the learner's question",
            max_length=4000,
            min_length=1,
            pattern="^[^\\u0000]*$",
            title="Content",
        ),
    ]
    concept_id: Annotated[
        UUID | None,
        Field(
            description="a concept of this roadmap the question is about",
            title="Concept Id",
        ),
    ] = None


class ChatMessageReceivedDetails(BaseModel):
    """
    A learner asked the roadmap's mentor (the answer is written by the chat worker).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    user_id: Annotated[UUID, Field(title="User Id")]
    kind: Annotated[Literal["chat_message_received"], Field(title="Kind")]
    message_id: Annotated[UUID, Field(title="Message Id")]
    answer_id: Annotated[UUID, Field(title="Answer Id")]
    chars: Annotated[int, Field(description="length of the question", ge=0, title="Chars")]


class Check(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    ok: Annotated[bool, Field(title="Ok")]
    detail: Annotated[str | None, Field(title="Detail")] = None
    duration_ms: Annotated[float | None, Field(title="Duration Ms")] = None


class BestQuizScore(RootModel[float]):
    root: Annotated[
        float,
        Field(
            description="your best attempt's score (none yet: null)",
            ge=0.0,
            le=1.0,
            title="Best Quiz Score",
        ),
    ]


class DroppedLink(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    url: Annotated[str, Field(title="Url")]
    error: Annotated[str | None, Field(description="why its check failed", title="Error")]


class FailedItem(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    item_id: Annotated[UUID, Field(title="Item Id")]
    concept_id: Annotated[UUID, Field(title="Concept Id")]
    concept_key: Annotated[str, Field(title="Concept Key")]
    kind: Annotated[Literal["tutorial", "resources", "quiz"], Field(title="ContentKind")]
    error: Annotated[str | None, Field(title="Error")]


class FieldError(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    loc: Annotated[list[str | int], Field(title="Loc")]
    msg: Annotated[str, Field(title="Msg")]
    type: Annotated[str, Field(title="Type")]


class ItemFailedDetails(BaseModel):
    """
    A content item failed for good (the message says why).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["item_failed"], Field(title="Kind")]
    item_id: Annotated[UUID, Field(title="Item Id")]
    content_kind: Annotated[Literal["tutorial", "resources", "quiz"], Field(title="ContentKind")]


class ItemsRetriedDetails(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    user_id: Annotated[UUID, Field(title="User Id")]
    kind: Annotated[Literal["items_retried"], Field(title="Kind")]
    items: Annotated[int, Field(description="failed items queued again", ge=0, title="Items")]


class JobCancelledDetails(BaseModel):
    """
    The content worker stopped a cancelled roadmap.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["job_cancelled"], Field(title="Kind")]


class AverageBestScore(RootModel[float]):
    root: Annotated[
        float,
        Field(
            description="mean of your best score per attempted quiz (none attempted: null)",
            ge=0.0,
            le=1.0,
            title="Average Best Score",
        ),
    ]


class Learning(BaseModel):
    """
    Your progress through the roadmap's concepts (what you marked, what you scored).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    concepts: Annotated[int, Field(description="concepts in the roadmap", ge=0, title="Concepts")]
    done: Annotated[int, Field(description="concepts you marked `done`", ge=0, title="Done")]
    in_progress: Annotated[
        int,
        Field(description="concepts you marked `in_progress`", ge=0, title="In Progress"),
    ]
    completion: Annotated[
        float,
        Field(
            description="`done` / `concepts` (0 without concepts)",
            ge=0.0,
            le=1.0,
            title="Completion",
        ),
    ]
    quizzes_attempted: Annotated[
        int,
        Field(
            description="concepts whose quiz you attempted",
            ge=0,
            title="Quizzes Attempted",
        ),
    ]
    average_best_score: Annotated[
        AverageBestScore | None,
        Field(
            description="mean of your best score per attempted quiz (none attempted: null)",
            title="Average Best Score",
        ),
    ]


class LinkCheckDetails(BaseModel):
    """
    The search results of a concept were checked; those that failed were dropped.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["link_check"], Field(title="Kind")]
    concept: Annotated[
        str, Field(description="key of the concept in the framework", title="Concept")
    ]
    checked: Annotated[int, Field(ge=0, title="Checked")]
    offered: Annotated[
        int,
        Field(
            description="results that answered, offered to the model",
            ge=0,
            title="Offered",
        ),
    ]
    dropped: Annotated[
        list[DroppedLink],
        Field(description="the first ones dropped", max_length=10, title="Dropped"),
    ]


class ResultCount(RootModel[int]):
    root: Annotated[int, Field(ge=0, title="Result Count")]


class LinkRecheckDetails(BaseModel):
    """
    The periodic re-check found dead links of a concept's resources.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["link_recheck"], Field(title="Kind")]
    item_id: Annotated[UUID, Field(title="Item Id")]
    version: Annotated[
        int, Field(description="the resources version it stored", ge=1, title="Version")
    ]
    dead: Annotated[int, Field(description="links that did not answer", ge=0, title="Dead")]
    replaced: Annotated[
        int,
        Field(description="of those, replaced from a new search", ge=0, title="Replaced"),
    ]
    query: Annotated[str | None, Field(description="the search for replacements", title="Query")]
    provider: Annotated[str | None, Field(title="Provider")]
    result_count: Annotated[ResultCount | None, Field(title="Result Count")]
    error: Annotated[str | None, Field(description="why the search failed", title="Error")]


class Links(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    self: Annotated[str, Field(title="Self")]
    events: Annotated[str, Field(title="Events")]
    logs: Annotated[str, Field(title="Logs")]


class LlmCallDetails(BaseModel):
    """
    One response of the LLM endpoint (category `llm`); `step` names the pipeline step.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["llm_call"], Field(title="Kind")]
    model: Annotated[str, Field(title="Model")]
    prompt_tokens: Annotated[int, Field(ge=0, title="Prompt Tokens")]
    completion_tokens: Annotated[int, Field(ge=0, title="Completion Tokens")]
    cost_usd: Annotated[
        str,
        Field(
            description="what the call cost, in US dollars (a decimal number)",
            title="Cost Usd",
        ),
    ]
    outcome: Annotated[
        str,
        Field(
            description="`ok`, or why the output was rejected (e.g. `malformed_output`)",
            title="Outcome",
        ),
    ]
    item_id: Annotated[
        UUID | None, Field(description="the content item it was for", title="Item Id")
    ]
    request_id: Annotated[
        str | None,
        Field(description="the LLM provider's request id", title="Request Id"),
    ]


class PasswordChange(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    current_password: Annotated[
        SecretStr, Field(max_length=128, min_length=1, title="Current Password")
    ]
    new_password: Annotated[
        SecretStr,
        Field(
            description="the same policy as at registration (12+ characters, not trivial)",
            max_length=128,
            min_length=1,
            title="New Password",
        ),
    ]


class PlanFailedDetails(BaseModel):
    """
    Planning failed (the message says why).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["plan_failed"], Field(title="Kind")]


class PlanReadyForReviewDetails(BaseModel):
    """
    The framework waits for the user's review.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["plan_ready_for_review"], Field(title="Kind")]
    concepts: Annotated[int, Field(ge=0, title="Concepts")]
    repair_rounds: Annotated[int, Field(ge=0, title="Repair Rounds")]
    round: Annotated[int, Field(description="review round", ge=1, title="Round")]


class PlanReviewedDetails(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    user_id: Annotated[UUID, Field(title="User Id")]
    kind: Annotated[Literal["plan_reviewed"], Field(title="Kind")]
    round: Annotated[int, Field(ge=1, title="Round")]
    approve: Annotated[bool, Field(title="Approve")]


class PlanStoredDetails(BaseModel):
    """
    The framework was stored and content generation starts.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["plan_stored"], Field(title="Kind")]
    concepts: Annotated[int, Field(ge=0, title="Concepts")]
    repair_rounds: Annotated[int, Field(ge=0, title="Repair Rounds")]


class Problem(BaseModel):
    """
    RFC 9457 problem details, with a request id and (for 422) the invalid fields.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    type: Annotated[
        str | None,
        Field(examples=["urn:roadmap-agent:problem:not-found"], title="Type"),
    ] = "about:blank"
    title: Annotated[str, Field(title="Title")]
    status: Annotated[int, Field(title="Status")]
    detail: Annotated[str | None, Field(title="Detail")] = None
    request_id: Annotated[str | None, Field(title="Request Id")] = None
    errors: Annotated[
        list[FieldError] | None,
        Field(description="422: the invalid fields", title="Errors"),
    ] = None
    quota: Annotated[
        str | None, Field(description="429: which quota was reached", title="Quota")
    ] = None
    limit: Annotated[int | None, Field(description="429: that quota's limit", title="Limit")] = None
    status_now: Annotated[
        str | None,
        Field(
            description="409: the roadmap's status that did not allow the change",
            title="Status Now",
        ),
    ] = None


class Progress(BaseModel):
    """
    Content items of a roadmap by state: the same shape in every response and event.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    total: Annotated[
        int, Field(description="content items (three per concept)", ge=0, title="Total")
    ]
    done: Annotated[int, Field(description="generated and stored", ge=0, title="Done")]
    failed: Annotated[
        int,
        Field(
            description="failed for good (a retry can queue them again)",
            ge=0,
            title="Failed",
        ),
    ]
    pending: Annotated[
        int,
        Field(
            description="not finished yet (pending, queued or running)",
            ge=0,
            title="Pending",
        ),
    ]
    cancelled: Annotated[
        int, Field(description="stopped by a cancellation", ge=0, title="Cancelled")
    ]


class ProgressIn(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[
        Literal["not_started", "in_progress", "done"],
        Field(
            description="Where a learner says they are with one concept (set by them, never by a worker).",
            title="LearnerStatus",
        ),
    ]


class ProgressOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    concept_id: Annotated[UUID, Field(title="Concept Id")]
    status: Annotated[
        Literal["not_started", "in_progress", "done"],
        Field(
            description="Where a learner says they are with one concept (set by them, never by a worker).",
            title="LearnerStatus",
        ),
    ]
    completed: Annotated[bool, Field(description="`status` is `done`", title="Completed")]
    completed_at: Annotated[
        AwareDatetime | None,
        Field(description="when it was marked done (while it is)", title="Completed At"),
    ]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]


class QuestionResult(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    question_id: Annotated[str, Field(title="Question Id")]
    chosen: Annotated[list[int], Field(description="the option indexes you chose", title="Chosen")]
    correct: Annotated[
        bool,
        Field(description="whether you chose exactly the correct options", title="Correct"),
    ]
    correct_options: Annotated[
        list[int],
        Field(description="indexes of the correct options", title="Correct Options"),
    ]
    explanation: Annotated[str, Field(title="Explanation")]


class QueueOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    name: Annotated[str, Field(title="Name")]
    depth: Annotated[int, Field(title="Depth")]
    oldest_age_s: Annotated[
        float | None,
        Field(description="age of the oldest waiting message", title="Oldest Age S"),
    ]


class Answer1(RootModel[int]):
    root: Annotated[
        int,
        Field(
            description="the chosen option's index; for a `multiple_choice` question also a list of the chosen indexes",
            ge=0,
            lt=8,
            title="Answer",
        ),
    ]


class Answer2Item(RootModel[int]):
    root: Annotated[int, Field(ge=0, lt=8)]


class Answer2(RootModel[list[Answer2Item]]):
    root: Annotated[
        list[Answer2Item],
        Field(
            description="the chosen option's index; for a `multiple_choice` question also a list of the chosen indexes",
            max_length=8,
            min_length=1,
            title="Answer",
        ),
    ]


class Answer(RootModel[Answer1 | Answer2]):
    root: Annotated[
        Answer1 | Answer2,
        Field(
            description="the chosen option's index; for a `multiple_choice` question also a list of the chosen indexes",
            title="Answer",
        ),
    ]


class QuizAttemptIn(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    answers: Annotated[
        list[Answer],
        Field(
            description="one entry per question of the quiz, in its order",
            max_length=20,
            min_length=1,
            title="Answers",
        ),
    ]
    quiz_version: Annotated[
        int | None,
        Field(
            description="the version of the quiz you answered (1 or more; the latest when left out): an older one answers 409, so answers are never scored against questions you did not see",
            title="Quiz Version",
        ),
    ] = None


class QuizAttemptOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    concept_id: Annotated[UUID, Field(title="Concept Id")]
    quiz_version: Annotated[int, Field(title="Quiz Version")]
    score: Annotated[
        float,
        Field(
            description="share of questions answered correctly",
            ge=0.0,
            le=1.0,
            title="Score",
        ),
    ]
    correct: Annotated[
        int, Field(description="questions answered correctly", ge=0, title="Correct")
    ]
    total: Annotated[int, Field(description="questions in the quiz", ge=0, title="Total")]
    results: Annotated[
        list[QuestionResult],
        Field(description="per question, in the quiz's order", title="Results"),
    ]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]


class QuizAttemptPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    items: Annotated[list[QuizAttemptOut], Field(description="newest first", title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class QuizQuestionOut(BaseModel):
    """
    A question as the learner sees it before answering: no correct options, no
    explanation (those come back with an attempt).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[str, Field(title="Id")]
    type: Annotated[
        Literal["single_choice", "multiple_choice", "true_false"],
        Field(title="QuestionType"),
    ]
    prompt: Annotated[str, Field(title="Prompt")]
    options: Annotated[list[str], Field(title="Options")]


class Readiness(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[Literal["ready", "not_ready"], Field(title="Status")]
    checks: Annotated[dict[str, Check], Field(title="Checks")]


class ReconcilerPassDetails(BaseModel):
    """
    A reconciler pass that re-sent lost work (category `system`, no roadmap).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["reconciler_pass"], Field(title="Kind")]
    plan_jobs: Annotated[
        list[UUID],
        Field(description="roadmaps whose planning was re-sent", title="Plan Jobs"),
    ]
    revisions: Annotated[
        list[UUID],
        Field(description="roadmaps whose revision was re-sent", title="Revisions"),
    ]
    generate_messages: Annotated[
        int,
        Field(description="content batches re-sent", ge=0, title="Generate Messages"),
    ]
    finalized: Annotated[list[UUID], Field(description="roadmaps it finished", title="Finalized")]


class RegenerateAccepted(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    concept_id: Annotated[UUID, Field(title="Concept Id")]
    kinds: Annotated[list[Literal["tutorial", "resources", "quiz"]], Field(title="Kinds")]
    status: Annotated[str, Field(title="Status")]
    links: Links


class Instructions(RootModel[str]):
    root: Annotated[
        str,
        Field(max_length=2000, min_length=1, pattern="^[^\\u0000]*$", title="Instructions"),
    ]


class RegenerateIn(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    kinds: Annotated[
        list[Literal["tutorial", "resources", "quiz"]],
        Field(max_length=3, min_length=1, title="Kinds"),
    ]
    instructions: Annotated[Instructions | None, Field(title="Instructions")] = None


class RegenerationRequestedDetails(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    user_id: Annotated[UUID, Field(title="User Id")]
    kind: Annotated[Literal["regeneration_requested"], Field(title="Kind")]
    kinds: Annotated[list[Literal["tutorial", "resources", "quiz"]], Field(title="Kinds")]
    with_instructions: Annotated[bool, Field(title="With Instructions")]


class DisplayName(RootModel[str]):
    root: Annotated[
        str,
        Field(max_length=100, min_length=1, pattern="^[^\\u0000]*$", title="Display Name"),
    ]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    email: Annotated[EmailStr, Field(max_length=320, title="Email")]
    password: Annotated[SecretStr, Field(max_length=128, min_length=1, title="Password")]
    display_name: Annotated[DisplayName | None, Field(title="Display Name")] = None


class ResourceSearchDetails(BaseModel):
    """
    A web search for a concept's resources (category `content`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["resource_search"], Field(title="Kind")]
    query: Annotated[str, Field(title="Query")]
    provider: Annotated[str, Field(description="`brave` or `searxng`", title="Provider")]
    result_count: Annotated[
        int,
        Field(description="results the provider returned", ge=0, title="Result Count"),
    ]
    concept: Annotated[
        str, Field(description="key of the concept in the framework", title="Concept")
    ]


class ResourcesDroppedDetails(BaseModel):
    """
    URLs the model returned that were not among the checked results (not stored).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["resources_dropped"], Field(title="Kind")]
    concept: Annotated[
        str, Field(description="key of the concept in the framework", title="Concept")
    ]
    urls: Annotated[list[str], Field(max_length=10, title="Urls")]


class RetryStartedDetails(BaseModel):
    """
    The content worker re-queued the failed items of these many concepts.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["retry_started"], Field(title="Kind")]
    concepts: Annotated[int, Field(ge=0, title="Concepts")]


class Feedback(RootModel[str]):
    root: Annotated[
        str,
        Field(max_length=4000, min_length=1, pattern="^[^\\u0000]*$", title="Feedback"),
    ]


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    approve: Annotated[bool, Field(title="Approve")]
    feedback: Annotated[Feedback | None, Field(title="Feedback")] = None


class ReviewOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    round: Annotated[int, Field(title="Round")]
    decision: Annotated[
        Literal["pending", "approved", "changes_requested"],
        Field(title="ReviewDecision"),
    ]
    feedback: Annotated[str | None, Field(title="Feedback")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    decided_at: Annotated[AwareDatetime | None, Field(title="Decided At")]


class RoadmapCancelledDetails(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    user_id: Annotated[UUID, Field(title="User Id")]
    kind: Annotated[Literal["roadmap_cancelled"], Field(title="Kind")]


class RoadmapDeletedDetails(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    user_id: Annotated[UUID, Field(title="User Id")]
    kind: Annotated[Literal["roadmap_deleted"], Field(title="Kind")]
    was_active: Annotated[
        bool,
        Field(description="it was still planning or generating", title="Was Active"),
    ]


class LearningStyle(RootModel[str]):
    root: Annotated[str, Field(max_length=200, pattern="^[^\\u0000]*$", title="Learning Style")]


class Background(RootModel[str]):
    root: Annotated[str, Field(max_length=2000, pattern="^[^\\u0000]*$", title="Background")]


class RoadmapRequest(BaseModel):
    """
    What a learner asks for. Stored verbatim on the job row; never rewritten.

    Bounds are checked here, at the door, so that nothing is accepted that no plan can
    meet (an hour budget of 5e-324 h used to be planned, and fail, at the LLM's expense):
    at least an hour a week. Numbers and booleans are strict (``"6"``, ``true`` as a
    number, ``0`` as a boolean are refused): what the schema says is what is accepted.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    goal: Annotated[str, Field(max_length=500, min_length=3, pattern="^[^\\u0000]*$", title="Goal")]
    level: Annotated[Literal["beginner", "intermediate", "advanced"], Field(title="Level")]
    weekly_hours: Annotated[
        float,
        Field(
            description="hours of study per week, 1 to 80",
            ge=1.0,
            le=80.0,
            title="Weekly Hours",
        ),
    ]
    weeks: Annotated[int, Field(description="1 to 104", ge=1, le=104, title="Weeks")]
    language: Annotated[
        str | None,
        Field(pattern="^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}$", title="Language"),
    ] = "en"
    learning_style: Annotated[LearningStyle | None, Field(title="Learning Style")] = None
    background: Annotated[Background | None, Field(title="Background")] = None
    review: Annotated[
        bool | None,
        Field(description="pause for your approval of the plan", title="Review"),
    ] = False


class RoadmapSubmittedDetails(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    user_id: Annotated[UUID, Field(title="User Id")]
    kind: Annotated[Literal["roadmap_submitted"], Field(title="Kind")]
    review: Annotated[
        bool, Field(description="the plan waits for the user's review", title="Review")
    ]


class RoadmapSummary(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    status: Annotated[
        Literal[
            "queued",
            "planning",
            "awaiting_review",
            "generating",
            "completed",
            "partial_failure",
            "failed",
            "cancelled",
        ],
        Field(title="JobStatus"),
    ]
    current_step: Annotated[
        Literal[
            "queued",
            "intent_analysis",
            "curriculum_design",
            "validation",
            "repair",
            "awaiting_review",
            "revision",
            "content_generation",
            "done",
        ],
        Field(title="JobStep"),
    ]
    title: Annotated[str | None, Field(title="Title")]
    goal: Annotated[str, Field(title="Goal")]
    progress: Progress
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    links: Links


class Round(RootModel[int]):
    root: Annotated[int, Field(description="validation or repair round", ge=0, title="Round")]


class Concepts(RootModel[int]):
    root: Annotated[int, Field(description="concepts in the framework", ge=0, title="Concepts")]


class StepFinishedDetails(BaseModel):
    """
    A pipeline step ended (`ok` false: it failed), with its LLM usage.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    round: Annotated[Round | None, Field(description="validation or repair round", title="Round")]
    errors: Annotated[list[str] | None, Field(description="validation errors", title="Errors")]
    concepts: Annotated[
        Concepts | None,
        Field(description="concepts in the framework", title="Concepts"),
    ]
    content_kind: Annotated[
        Literal["tutorial", "resources", "quiz"] | None,
        Field(description="content generated"),
    ]
    concept: Annotated[
        str | None,
        Field(description="key of the concept in the framework", title="Concept"),
    ]
    kind: Annotated[Literal["step_finished"], Field(title="Kind")]
    ok: Annotated[bool, Field(title="Ok")]
    error: Annotated[str | None, Field(description="why it failed", title="Error")]
    llm_calls: Annotated[int, Field(ge=0, title="Llm Calls")]
    prompt_tokens: Annotated[int, Field(ge=0, title="Prompt Tokens")]
    completion_tokens: Annotated[int, Field(ge=0, title="Completion Tokens")]
    cost_usd: Annotated[str, Field(description="US dollars (a decimal number)", title="Cost Usd")]


class StepStartedDetails(BaseModel):
    """
    A pipeline step started; `step` names it.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    round: Annotated[Round | None, Field(description="validation or repair round", title="Round")]
    errors: Annotated[list[str] | None, Field(description="validation errors", title="Errors")]
    concepts: Annotated[
        Concepts | None,
        Field(description="concepts in the framework", title="Concepts"),
    ]
    content_kind: Annotated[
        Literal["tutorial", "resources", "quiz"] | None,
        Field(description="content generated"),
    ]
    concept: Annotated[
        str | None,
        Field(description="key of the concept in the framework", title="Concept"),
    ]
    kind: Annotated[Literal["step_started"], Field(title="Kind")]


class TokenOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    access_token: Annotated[str, Field(title="Access Token")]
    token_type: Annotated[Literal["bearer"], Field(title="Token Type")] = "bearer"
    expires_in: Annotated[
        int, Field(description="seconds until the token expires", title="Expires In")
    ]


class TruncatedDetails(BaseModel):
    """
    Details larger than `LOG_DETAILS_MAX_BYTES`, replaced when they were logged.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["truncated"], Field(title="Kind")]
    original_kind: Annotated[
        str,
        Field(
            description="the kind of the details that were replaced",
            title="Original Kind",
        ),
    ]
    original_bytes: Annotated[
        int, Field(description="their size as JSON", ge=0, title="Original Bytes")
    ]
    preview: Annotated[str, Field(description="the start of their JSON text", title="Preview")]


class Tutorial(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    title: Annotated[
        str, Field(max_length=200, min_length=1, pattern="^[^\\u0000]*$", title="Title")
    ]
    markdown: Annotated[
        str,
        Field(max_length=60000, min_length=1, pattern="^[^\\u0000]*$", title="Markdown"),
    ]
    estimated_minutes: Annotated[int, Field(ge=1, le=600, title="Estimated Minutes")]


class TutorialVersion(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    version: Annotated[int, Field(ge=1, title="Version")]
    model: Annotated[str, Field(description="the LLM model that wrote it", title="Model")]
    instructions: Annotated[
        str | None,
        Field(
            description="regeneration instructions it was asked with",
            title="Instructions",
        ),
    ]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    body: Tutorial


class UntypedDetails(BaseModel):
    """
    Details stored before their kind was declared (or not of its shape any more).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    kind: Annotated[Literal["untyped"], Field(title="Kind")]
    data: Annotated[
        dict[str, Any],
        Field(
            description="Free-form: the details as they were stored. Written by versions before log details were typed (API 2.1.0); new events always have a declared kind.",
            title="Data",
        ),
    ]


class Usage(BaseModel):
    """
    LLM usage of a roadmap so far.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    prompt_tokens: Annotated[int, Field(ge=0, title="Prompt Tokens")]
    completion_tokens: Annotated[int, Field(ge=0, title="Completion Tokens")]
    cost_usd: Annotated[
        float,
        Field(
            description="estimated from the model's list price",
            ge=0.0,
            title="Cost Usd",
        ),
    ]
    llm_calls: Annotated[int, Field(ge=0, title="Llm Calls")]


class UserOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    email: Annotated[str, Field(title="Email")]
    display_name: Annotated[str | None, Field(title="Display Name")]
    is_admin: Annotated[bool, Field(title="Is Admin")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]


class WorkerOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    instance: Annotated[str, Field(title="Instance")]
    last_seen_s: Annotated[
        float,
        Field(description="seconds since its last heartbeat", title="Last Seen S"),
    ]
    info: Annotated[
        dict[str, Any],
        Field(
            description="Free-form: what the worker reported in its last heartbeat (pid, pool, concurrency, loop lag…); the keys differ by worker type and version and are for operators, not programs.",
            title="Info",
        ),
    ]


class CancelledEvent(BaseModel):
    """
    Terminal: the roadmap was cancelled (or deleted) while it was active.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[Literal["cancelled"], Field(title="Status")] = "cancelled"
    progress: Progress


class ChatDeltaEvent(BaseModel):
    """
    The next piece of an answer being written (``index`` counts from 0 per answer).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    message_id: Annotated[UUID, Field(title="Message Id")]
    index: Annotated[int, Field(ge=0, title="Index")]
    text: Annotated[str, Field(title="Text")]


class CompletedEvent(BaseModel):
    """
    Terminal: every item finished; ``partial_failure`` lists the ones that failed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[Literal["completed", "partial_failure"], Field(title="Status")]
    failed_items: Annotated[list[FailedItem], Field(title="Failed Items")]
    progress: Progress


class Prerequisite(RootModel[str]):
    root: Annotated[str, Field(pattern="^[a-z0-9][a-z0-9-]{0,63}$")]


class Concept(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[str, Field(pattern="^[a-z0-9][a-z0-9-]{0,63}$", title="Id")]
    title: Annotated[
        str, Field(max_length=200, min_length=1, pattern="^[^\\u0000]*$", title="Title")
    ]
    summary: Annotated[str, Field(max_length=4000, pattern="^[^\\u0000]*$", title="Summary")]
    difficulty: Annotated[int, Field(ge=1, le=5, title="Difficulty")]
    estimated_hours: Annotated[float, Field(gt=0.0, le=200.0, title="Estimated Hours")]
    prerequisites: Annotated[
        list[Prerequisite] | None, Field(max_length=20, title="Prerequisites")
    ] = None


class FailedEvent(BaseModel):
    """
    Terminal: the roadmap failed (planning could not produce a valid plan).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[Literal["failed"], Field(title="Status")] = "failed"
    error: Annotated[str | None, Field(title="Error")]
    progress: Progress


class ItemEvent(BaseModel):
    """
    A content item (one kind of one concept) changed state.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    item_id: Annotated[UUID, Field(title="Item Id")]
    concept_id: Annotated[UUID, Field(title="Concept Id")]
    concept_key: Annotated[str | None, Field(title="Concept Key")]
    kind: Annotated[Literal["tutorial", "resources", "quiz"], Field(title="ContentKind")]
    status: Annotated[
        Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"],
        Field(title="ItemStatus"),
    ]
    version: Annotated[
        int | None,
        Field(description="the version stored, once stored", title="Version"),
    ] = None
    error: Annotated[str | None, Field(title="Error")] = None
    progress: Progress


class Module(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    title: Annotated[
        str, Field(max_length=200, min_length=1, pattern="^[^\\u0000]*$", title="Title")
    ]
    description: Annotated[
        str | None, Field(max_length=4000, pattern="^[^\\u0000]*$", title="Description")
    ] = ""
    concepts: Annotated[list[Concept], Field(max_length=50, title="Concepts")]


class ReviewState(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    round: Annotated[int, Field(ge=1, title="Round")]
    decision: Annotated[
        Literal["pending", "approved", "changes_requested"],
        Field(title="ReviewDecision"),
    ]
    round_id: Annotated[UUID, Field(title="Round Id")]


class SnapshotEvent(BaseModel):
    """
    First event of a stream that starts without (or after a gap in) the client's history:
    the roadmap's state as stored.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    status: Annotated[
        Literal[
            "queued",
            "planning",
            "awaiting_review",
            "generating",
            "completed",
            "partial_failure",
            "failed",
            "cancelled",
        ],
        Field(title="JobStatus"),
    ]
    current_step: Annotated[
        Literal[
            "queued",
            "intent_analysis",
            "curriculum_design",
            "validation",
            "repair",
            "awaiting_review",
            "revision",
            "content_generation",
            "done",
        ],
        Field(title="JobStep"),
    ]
    title: Annotated[str | None, Field(title="Title")]
    error: Annotated[str | None, Field(title="Error")]
    progress: Progress
    usage: Usage
    review: ReviewState | None
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]


class Stage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    title: Annotated[
        str, Field(max_length=200, min_length=1, pattern="^[^\\u0000]*$", title="Title")
    ]
    description: Annotated[
        str | None, Field(max_length=4000, pattern="^[^\\u0000]*$", title="Description")
    ] = ""
    modules: Annotated[list[Module], Field(max_length=20, title="Modules")]


class StatusEvent(BaseModel):
    """
    The roadmap changed status (planning started, review, approve, revise, retry, …).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[
        Literal[
            "queued",
            "planning",
            "awaiting_review",
            "generating",
            "completed",
            "partial_failure",
            "failed",
            "cancelled",
        ],
        Field(title="JobStatus"),
    ]
    step: Annotated[
        Literal[
            "queued",
            "intent_analysis",
            "curriculum_design",
            "validation",
            "repair",
            "awaiting_review",
            "revision",
            "content_generation",
            "done",
        ],
        Field(title="JobStep"),
    ]


class StepEvent(BaseModel):
    """
    Planning moved on to another step.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    step: Annotated[
        Literal[
            "queued",
            "intent_analysis",
            "curriculum_design",
            "validation",
            "repair",
            "awaiting_review",
            "revision",
            "content_generation",
            "done",
        ],
        Field(title="JobStep"),
    ]


class ProgressStreamItem1(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["snapshot"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/SnapshotEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem2(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["status"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/StatusEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem3(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["step"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/StepEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem4(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["item"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/ItemEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem5(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["review_required"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/ReviewRequiredEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem6(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["completed"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/CompletedEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem7(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["failed"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/FailedEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem8(BaseModel):
    """
    One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["cancelled"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/CancelledEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ProgressStreamItem(
    RootModel[
        ProgressStreamItem1
        | ProgressStreamItem2
        | ProgressStreamItem3
        | ProgressStreamItem4
        | ProgressStreamItem5
        | ProgressStreamItem6
        | ProgressStreamItem7
        | ProgressStreamItem8
    ]
):
    root: Annotated[
        ProgressStreamItem1
        | ProgressStreamItem2
        | ProgressStreamItem3
        | ProgressStreamItem4
        | ProgressStreamItem5
        | ProgressStreamItem6
        | ProgressStreamItem7
        | ProgressStreamItem8,
        Field(
            description="One event of a roadmap's progress stream, as its wire fields: `event` (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.",
            title="ProgressStreamItem",
        ),
    ]


class ChatStreamItem1(BaseModel):
    """
    One event of a roadmap's chat stream, as its wire fields (like `ProgressStreamItem`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["delta"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/ChatDeltaEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ChatStreamItem2(BaseModel):
    """
    One event of a roadmap's chat stream, as its wire fields (like `ProgressStreamItem`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    event: Literal["message"]
    data: Annotated[
        str,
        Field(
            json_schema_extra={
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/ChatMessageEvent"},
            }
        ),
    ]
    id: Annotated[str | None, Field(pattern="^[0-9]+-[0-9]+$")] = None
    retry: Annotated[int | None, Field(ge=0)] = None


class ChatStreamItem(RootModel[ChatStreamItem1 | ChatStreamItem2]):
    root: Annotated[
        ChatStreamItem1 | ChatStreamItem2,
        Field(
            description="One event of a roadmap's chat stream, as its wire fields (like `ProgressStreamItem`).",
            title="ChatStreamItem",
        ),
    ]


class AdminRoadmapSummary(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    status: Annotated[
        Literal[
            "queued",
            "planning",
            "awaiting_review",
            "generating",
            "completed",
            "partial_failure",
            "failed",
            "cancelled",
        ],
        Field(title="JobStatus"),
    ]
    current_step: Annotated[
        Literal[
            "queued",
            "intent_analysis",
            "curriculum_design",
            "validation",
            "repair",
            "awaiting_review",
            "revision",
            "content_generation",
            "done",
        ],
        Field(title="JobStep"),
    ]
    title: Annotated[str | None, Field(title="Title")]
    goal: Annotated[str, Field(title="Goal")]
    progress: Progress
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    links: Links
    owner_id: Annotated[UUID, Field(title="Owner Id")]
    owner_email: Annotated[str | None, Field(title="Owner Email")]


class ApiKeyList(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    items: Annotated[list[ApiKeyOut], Field(title="Items")]


class ChatMessageView(BaseModel):
    """
    One message of the conversation, as the API lists it and the ``message`` event ends
    an answer with.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    role: Annotated[Literal["user", "assistant"], Field(title="ChatRole")]
    status: Annotated[
        Literal["pending", "streaming", "done", "failed"],
        Field(
            description="A learner's message is ``done`` when stored; an answer goes ``pending`` (queued),\n``streaming`` (its worker is writing it), then ``done`` or ``failed``.",
            title="ChatStatus",
        ),
    ]
    content: Annotated[str, Field(title="Content")]
    concept_id: Annotated[
        UUID | None,
        Field(description="the concept the question was about", title="Concept Id"),
    ]
    reply_to: Annotated[UUID | None, Field(description="an answer's question", title="Reply To")]
    error: Annotated[str | None, Field(description="why an answer failed", title="Error")]
    prompt_tokens: Annotated[
        int,
        Field(description="an answer's (0 for a question)", ge=0, title="Prompt Tokens"),
    ]
    completion_tokens: Annotated[int, Field(ge=0, title="Completion Tokens")]
    cost_usd: Annotated[
        float,
        Field(
            description="estimated from the model's list price",
            ge=0.0,
            title="Cost Usd",
        ),
    ]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    completed_at: Annotated[
        AwareDatetime | None,
        Field(description="when an answer ended", title="Completed At"),
    ]


class ChatPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    items: Annotated[list[ChatMessageView], Field(description="oldest first", title="Items")]
    has_more: Annotated[
        bool, Field(description="older messages exist beyond `limit`", title="Has More")
    ]


class ItemState(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[
        Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"],
        Field(title="ItemStatus"),
    ]
    version: Annotated[
        int, Field(description="latest stored version (0: none yet)", title="Version")
    ]
    error: Annotated[str | None, Field(title="Error")] = None


class JobAccepted(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    status: Annotated[
        Literal[
            "queued",
            "planning",
            "awaiting_review",
            "generating",
            "completed",
            "partial_failure",
            "failed",
            "cancelled",
        ],
        Field(title="JobStatus"),
    ]
    links: Links


class JobFinishedDetails(BaseModel):
    """
    Every item finished: the roadmap's final status and the items that failed.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    trace_id: Annotated[
        str | None,
        Field(
            description="OpenTelemetry trace id of the code that logged the event",
            title="Trace Id",
        ),
    ]
    span_id: Annotated[str | None, Field(description="its span id", title="Span Id")]
    kind: Annotated[Literal["job_finished"], Field(title="Kind")]
    status: Annotated[
        Literal[
            "queued",
            "planning",
            "awaiting_review",
            "generating",
            "completed",
            "partial_failure",
            "failed",
            "cancelled",
        ],
        Field(title="JobStatus"),
    ]
    failed_items: Annotated[list[FailedItem], Field(title="Failed Items")]
    progress: Progress


class LinkCheck(BaseModel):
    """
    What the link checker saw when it last fetched a resource's URL.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[Literal["ok", "dead"], Field(title="LinkStatus")]
    checked_at: Annotated[AwareDatetime, Field(title="Checked At")]
    http_status: Annotated[
        int | None,
        Field(description="status of the last hop (none: no answer)", title="Http Status"),
    ]
    final_url: Annotated[str, Field(description="where the redirects ended", title="Final Url")]
    content_type: Annotated[str | None, Field(title="Content Type")] = None
    page_title: Annotated[
        str | None, Field(description="the page's <title>, if HTML", title="Page Title")
    ] = None
    error: Annotated[str | None, Field(description="why the last check failed", title="Error")] = (
        None
    )


class LogOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    event_id: Annotated[UUID, Field(title="Event Id")]
    ts: Annotated[AwareDatetime, Field(title="Ts")]
    level: Annotated[Literal["debug", "info", "warning", "error"], Field(title="LogLevel")]
    category: Annotated[
        Literal["workflow", "llm", "content", "review", "system", "api"],
        Field(title="LogCategory"),
    ]
    step: Annotated[
        str | None,
        Field(description="the pipeline step or API action it belongs to", title="Step"),
    ]
    message: Annotated[str, Field(title="Message")]
    concept_id: Annotated[UUID | None, Field(title="Concept Id")]
    duration_ms: Annotated[float | None, Field(title="Duration Ms")]
    details: Annotated[
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
        | ChatAnsweredDetails
        | TruncatedDetails
        | UntypedDetails,
        Field(
            description="Structured context of the event, one shape per `kind` (new kinds may be added in a minor version: treat an unknown `kind` like `untyped`). `truncated`: details too large to keep; `untyped`: an event logged before its kind was declared.",
            discriminator="kind",
            title="Details",
        ),
    ]


class LogPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    items: Annotated[list[LogOut], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class QueuesOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    queues: Annotated[list[QueueOut], Field(title="Queues")]
    workers: Annotated[dict[str, list[WorkerOut]], Field(title="Workers")]


class QuizOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    questions: Annotated[list[QuizQuestionOut], Field(title="Questions")]


class QuizVersion(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    version: Annotated[int, Field(ge=1, title="Version")]
    model: Annotated[str, Field(description="the LLM model that wrote it", title="Model")]
    instructions: Annotated[
        str | None,
        Field(
            description="regeneration instructions it was asked with",
            title="Instructions",
        ),
    ]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    body: QuizOut


class Resource(BaseModel):
    """
    A learning resource chosen from web search results, with its link check.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    title: Annotated[
        str, Field(max_length=200, min_length=1, pattern="^[^\\u0000]*$", title="Title")
    ]
    url: Annotated[AnyUrl, Field(title="Url")]
    type: Annotated[
        Literal[
            "article",
            "video",
            "book",
            "course",
            "documentation",
            "exercise",
            "tool",
            "other",
        ],
        Field(title="ResourceType"),
    ]
    description: Annotated[
        str | None, Field(max_length=4000, pattern="^[^\\u0000]*$", title="Description")
    ] = ""
    link: LinkCheck | None = None


class ResourceList(BaseModel):
    """
    A concept's resources (the contract's name for the domain's CheckedResourceList).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    resources: Annotated[list[Resource], Field(max_length=20, title="Resources")]
    search_query: Annotated[
        str | None,
        Field(description="the web search they came from", title="Search Query"),
    ] = None
    search_provider: Annotated[
        str | None, Field(description="`brave` or `searxng`", title="Search Provider")
    ] = None


class ResourcesVersion(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    version: Annotated[int, Field(ge=1, title="Version")]
    model: Annotated[str, Field(description="the LLM model that wrote it", title="Model")]
    instructions: Annotated[
        str | None,
        Field(
            description="regeneration instructions it was asked with",
            title="Instructions",
        ),
    ]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    body: Annotated[
        ResourceList,
        Field(
            description="resources chosen from web search results, each with its link check (`link`: `ok` or `dead`, HTTP status, final URL, content type, page title, `checked_at`; null only for content stored before links were checked)"
        ),
    ]


class RoadmapPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    items: Annotated[list[RoadmapSummary], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class TutorialItem(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[
        Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"],
        Field(title="ItemStatus"),
    ]
    version: Annotated[
        int, Field(description="latest stored version (0: none yet)", title="Version")
    ]
    versions: Annotated[list[int], Field(description="every stored version", title="Versions")]
    error: Annotated[str | None, Field(title="Error")]
    kind: Annotated[Literal["tutorial"], Field(title="Kind")]
    result: Annotated[
        TutorialVersion | None,
        Field(description="the latest version, or the one asked for"),
    ]


class ChatMessageEvent(BaseModel):
    """
    An answer ended: the whole message as stored (``done``, or ``failed`` with its error).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    message: ChatMessageView


class Framework(BaseModel):
    """
    A curriculum: stages → modules → concepts. Validity beyond shape is checked separately.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    title: Annotated[
        str, Field(max_length=200, min_length=1, pattern="^[^\\u0000]*$", title="Title")
    ]
    summary: Annotated[
        str | None, Field(max_length=4000, pattern="^[^\\u0000]*$", title="Summary")
    ] = ""
    stages: Annotated[list[Stage], Field(max_length=50, title="Stages")]


class ReviewRequiredEvent(BaseModel):
    """
    A plan waits for the learner's decision (``POST /roadmaps/{id}/review``).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    round_id: Annotated[UUID, Field(title="Round Id")]
    round: Annotated[int, Field(ge=1, title="Round")]
    framework: Framework


class AdminRoadmapPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    items: Annotated[list[AdminRoadmapSummary], Field(title="Items")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class ChatAccepted(BaseModel):
    """
    The stored question; its answer streams on ``links.events``.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    message: ChatMessageView
    answer_id: Annotated[
        UUID,
        Field(description="id of the assistant message to come", title="Answer Id"),
    ]
    last_event_id: Annotated[
        str,
        Field(
            description="the chat stream's position before this answer: a stream opened with it as `Last-Event-ID` receives every event of the answer",
            pattern="^[0-9]+-[0-9]+$",
            title="Last Event Id",
        ),
    ]
    links: ChatLinks


class ConceptNode(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    key: Annotated[str, Field(title="Key")]
    title: Annotated[str, Field(title="Title")]
    summary: Annotated[str, Field(title="Summary")]
    difficulty: Annotated[int, Field(title="Difficulty")]
    estimated_hours: Annotated[float, Field(title="Estimated Hours")]
    prerequisites: Annotated[list[str], Field(title="Prerequisites")]
    progress: Annotated[
        Literal["not_started", "in_progress", "done"],
        Field(description="where you say you are with this concept", title="LearnerStatus"),
    ]
    completed: Annotated[bool, Field(description="`progress` is `done`", title="Completed")]
    quiz_attempts: Annotated[
        int, Field(description="your attempts at its quiz", ge=0, title="Quiz Attempts")
    ]
    best_quiz_score: Annotated[
        BestQuizScore | None,
        Field(
            description="your best attempt's score (none yet: null)",
            title="Best Quiz Score",
        ),
    ]
    content: Annotated[
        dict[Literal["tutorial", "resources", "quiz"], ItemState],
        Field(title="Content"),
    ]


class ModuleNode(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    title: Annotated[str, Field(title="Title")]
    description: Annotated[str, Field(title="Description")]
    concepts: Annotated[list[ConceptNode], Field(title="Concepts")]


class QuizItem(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[
        Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"],
        Field(title="ItemStatus"),
    ]
    version: Annotated[
        int, Field(description="latest stored version (0: none yet)", title="Version")
    ]
    versions: Annotated[list[int], Field(description="every stored version", title="Versions")]
    error: Annotated[str | None, Field(title="Error")]
    kind: Annotated[Literal["quiz"], Field(title="Kind")]
    result: Annotated[
        QuizVersion | None,
        Field(description="the latest version, or the one asked for"),
    ]


class ResourcesItem(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: Annotated[
        Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"],
        Field(title="ItemStatus"),
    ]
    version: Annotated[
        int, Field(description="latest stored version (0: none yet)", title="Version")
    ]
    versions: Annotated[list[int], Field(description="every stored version", title="Versions")]
    error: Annotated[str | None, Field(title="Error")]
    kind: Annotated[Literal["resources"], Field(title="Kind")]
    result: Annotated[
        ResourcesVersion | None,
        Field(description="the latest version, or the one asked for"),
    ]


class StageNode(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    title: Annotated[str, Field(title="Title")]
    description: Annotated[str, Field(title="Description")]
    modules: Annotated[list[ModuleNode], Field(title="Modules")]


class ConceptOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    roadmap_id: Annotated[UUID, Field(title="Roadmap Id")]
    key: Annotated[str, Field(title="Key")]
    title: Annotated[str, Field(title="Title")]
    summary: Annotated[str, Field(title="Summary")]
    difficulty: Annotated[int, Field(title="Difficulty")]
    estimated_hours: Annotated[float, Field(title="Estimated Hours")]
    prerequisites: Annotated[list[str], Field(title="Prerequisites")]
    progress: Annotated[
        Literal["not_started", "in_progress", "done"],
        Field(description="where you say you are with this concept", title="LearnerStatus"),
    ]
    completed: Annotated[bool, Field(description="`progress` is `done`", title="Completed")]
    quiz_attempts: Annotated[
        int, Field(description="your attempts at its quiz", ge=0, title="Quiz Attempts")
    ]
    best_quiz_score: Annotated[
        BestQuizScore | None,
        Field(
            description="your best attempt's score (none yet: null)",
            title="Best Quiz Score",
        ),
    ]
    content: Annotated[
        dict[
            Literal["tutorial", "resources", "quiz"],
            TutorialItem | ResourcesItem | QuizItem,
        ],
        Field(title="Content"),
    ]


class FrameworkOut(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    title: Annotated[str | None, Field(title="Title")]
    summary: Annotated[str | None, Field(title="Summary")]
    stages: Annotated[list[StageNode], Field(title="Stages")]


class RoadmapDetail(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[UUID, Field(title="Id")]
    status: Annotated[
        Literal[
            "queued",
            "planning",
            "awaiting_review",
            "generating",
            "completed",
            "partial_failure",
            "failed",
            "cancelled",
        ],
        Field(title="JobStatus"),
    ]
    current_step: Annotated[
        Literal[
            "queued",
            "intent_analysis",
            "curriculum_design",
            "validation",
            "repair",
            "awaiting_review",
            "revision",
            "content_generation",
            "done",
        ],
        Field(title="JobStep"),
    ]
    title: Annotated[str | None, Field(title="Title")]
    goal: Annotated[str, Field(title="Goal")]
    progress: Progress
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    links: Links
    summary: Annotated[str | None, Field(title="Summary")]
    error: Annotated[str | None, Field(title="Error")]
    request: Annotated[RoadmapRequest, Field(description="the request as submitted")]
    usage: Usage
    started_at: Annotated[AwareDatetime | None, Field(title="Started At")]
    finished_at: Annotated[AwareDatetime | None, Field(title="Finished At")]
    review: ReviewOut | None
    framework: FrameworkOut | None
    learning: Learning
