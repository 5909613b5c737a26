"""SQLAlchemy models for the whole system.

Status has exactly one home: a job's status lives on ``roadmap_jobs.status``,
each content item's on ``content_items.status``. Job progress is derived from
item rows. JSON columns hold immutable payloads (requests, results, snapshots),
never a status that gets rewritten.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from roadmap_core.chat import ChatRole, ChatStatus
from roadmap_core.domain import (
    ContentKind,
    ItemStatus,
    JobStatus,
    JobStep,
    LearnerStatus,
    ReviewDecision,
)
from roadmap_core.ids import new_id

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY = Numeric(14, 6)


def _enum(cls: type, name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        Decimal: MONEY,
    }


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", func.lower(text("email")), unique=True),)

    id: Mapped[uuid.UUID] = _pk()
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(100))
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Carried by access tokens (claim ``ver``); a password change increments it, so every
    # token issued before the change stops matching (migration 0005).
    token_version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = _created()


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the full key: keys are long random strings, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RoadmapJob(Base):
    __tablename__ = "roadmap_jobs"
    __table_args__ = (
        Index("ix_roadmap_jobs_owner_created", "owner_id", "id"),
        Index(
            "ix_roadmap_jobs_stale",
            "status",
            "updated_at",
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # The API's active-jobs quota counts one owner's unfinished jobs on every submit.
        Index(
            "ix_roadmap_jobs_owner_active",
            "owner_id",
            postgresql_where=text(
                "deleted_at IS NULL"
                " AND status IN ('queued', 'planning', 'awaiting_review', 'generating')"
            ),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request: Mapped[dict[str, Any]]
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus, "job_status"), default=JobStatus.queued
    )
    current_step: Mapped[JobStep] = mapped_column(
        _enum(JobStep, "job_step"), default=JobStep.queued
    )
    # Claims of the planning/revision work: bounded, so a poison job ends failed.
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    framework_round: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    intent: Mapped[dict[str, Any] | None]
    title: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    llm_calls: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Tokens the job's work in flight still has reserved against its owner's daily quota:
    # estimates added by the routes that start work, then lowered by every token used and
    # zeroed when the job rests or ends, by a trigger (migration 0006, ``spending``).
    tokens_reserved: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When the worker holding the job last proved it is alive (claim lease).
    heartbeat_at: Mapped[datetime | None]
    # Id of the task message holding the claim: its redelivery takes over at once.
    claim_token: Mapped[str | None] = mapped_column(String(64))
    enqueued_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class Stage(Base):
    __tablename__ = "stages"

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roadmap_jobs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")


class Module(Base):
    __tablename__ = "modules"

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roadmap_jobs.id", ondelete="CASCADE"), index=True
    )
    stage_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stages.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")


class Concept(Base):
    __tablename__ = "concepts"
    __table_args__ = (UniqueConstraint("job_id", "key", name="uq_concepts_job_key"),)

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roadmap_jobs.id", ondelete="CASCADE"), index=True
    )
    module_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), index=True
    )
    # The stable id the curriculum uses (slug), unique within the job.
    key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, server_default="")
    difficulty: Mapped[int] = mapped_column(Integer)
    estimated_hours: Mapped[float] = mapped_column(Float)
    prerequisites: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")


class ContentItem(Base):
    __tablename__ = "content_items"
    __table_args__ = (
        UniqueConstraint("concept_id", "kind", name="uq_content_items_concept_kind"),
        Index("ix_content_items_job_status", "job_id", "status"),
        Index(
            "ix_content_items_active",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index(
            "ix_content_items_links_due",
            text("links_checked_at NULLS FIRST"),
            "id",
            postgresql_where=text("kind = 'resources' AND status = 'succeeded'"),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roadmap_jobs.id", ondelete="CASCADE"))
    concept_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("concepts.id", ondelete="CASCADE"))
    kind: Mapped[ContentKind] = mapped_column(_enum(ContentKind, "content_kind"))
    status: Mapped[ItemStatus] = mapped_column(
        _enum(ItemStatus, "item_status"), default=ItemStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Times claimed; bounds items whose tasks keep dying before any attempt starts.
    claims: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    # Latest stored version (0 = none yet); a regeneration writes version + 1.
    version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Learner instructions for the pending (re)generation, if any.
    instructions: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    # Id of the task message holding the claim (see RoadmapJob.claim_token).
    claim_token: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # When the resource links of this (resources) item were last checked as a whole.
    links_checked_at: Mapped[datetime | None]


class ContentResult(Base):
    __tablename__ = "content_results"
    __table_args__ = (
        UniqueConstraint("item_id", "version", name="uq_content_results_item_version"),
    )

    id: Mapped[uuid.UUID] = _pk()
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]]
    model: Mapped[str] = mapped_column(String(100))
    instructions: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    created_at: Mapped[datetime] = _created()


class ReviewRound(Base):
    __tablename__ = "review_rounds"
    __table_args__ = (UniqueConstraint("job_id", "round", name="uq_review_rounds_job_round"),)

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roadmap_jobs.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    # The framework proposed in this round (immutable snapshot).
    framework: Mapped[dict[str, Any]]
    decision: Mapped[ReviewDecision] = mapped_column(
        _enum(ReviewDecision, "review_decision"), default=ReviewDecision.pending
    )
    feedback: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    decided_at: Mapped[datetime | None]


class LLMCall(Base):
    """One request to the LLM: what it cost and what it was for."""

    __tablename__ = "llm_calls"

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roadmap_jobs.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("content_items.id", ondelete="SET NULL")
    )
    step: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(100))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[Decimal] = mapped_column(MONEY)
    duration_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = _created()


class TokenUsage(Base):
    """LLM tokens one owner's work used in one hour (UTC), whatever job they went to.

    Written only by triggers on ``roadmap_jobs`` (migration 0006): every increase of a
    job's token totals lands here, in the hour it was recorded. The daily token quota
    sums the hours that began in the last 24 hours (``repositories.spending``).
    """

    __tablename__ = "token_usage"

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class ConceptProgress(Base):
    __tablename__ = "concept_progress"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    concept_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("concepts.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[LearnerStatus] = mapped_column(
        _enum(LearnerStatus, "learner_status"), server_default=LearnerStatus.not_started.value
    )
    # When it was marked done (kept while it stays done; cleared when it no longer is).
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class QuizAttempt(Base):
    __tablename__ = "quiz_attempts"
    __table_args__ = (
        Index(
            "ix_quiz_attempts_user_concept_created",
            "user_id",
            "concept_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    concept_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("concepts.id", ondelete="CASCADE"))
    quiz_version: Mapped[int] = mapped_column(Integer)
    # The options chosen, one list per question (older attempts: question id → options).
    answers: Mapped[Any] = mapped_column(JSONB)
    score: Mapped[float] = mapped_column(Float)
    correct: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # What the learner was told, per question (immutable; scored once, when submitted).
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    created_at: Mapped[datetime] = _created()


class ChatMessage(Base):
    """Both sides of a learner's mentor chat on one roadmap (migration 0008)."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_job_user_created", "job_id", "user_id", "created_at", "id"),
        # The reconciler's lost answers (migration 0010): only answers nobody claimed.
        Index(
            "ix_chat_messages_pending_answers",
            "created_at",
            postgresql_where=text("role = 'assistant' AND status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roadmap_jobs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[ChatRole] = mapped_column(_enum(ChatRole, "chat_role"))
    status: Mapped[ChatStatus] = mapped_column(_enum(ChatStatus, "chat_status"))
    content: Mapped[str] = mapped_column(Text, server_default="")
    concept_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("concepts.id", ondelete="SET NULL")
    )
    reply_to: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("chat_messages.id", ondelete="CASCADE")
    )
    error: Mapped[str | None] = mapped_column(Text)
    # Claims of the answer by the chat worker (bounded: a poison answer ends failed).
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    claim_token: Mapped[str | None] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    # The quota estimate the API added to the roadmap's reservation for this answer; the
    # worker takes what the answer did not use back off it when the answer ends.
    tokens_reserved: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None]


class ExecutionLog(Base):
    __tablename__ = "execution_logs"
    __table_args__ = (
        # Per-job cursor reads: WHERE job_id = ? AND (ts, event_id) > (?, ?) ORDER BY ts, event_id
        Index("ix_execution_logs_job_cursor", "job_id", "ts", "event_id"),
        Index("ix_execution_logs_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    job_id: Mapped[uuid.UUID | None]
    concept_id: Mapped[uuid.UUID | None]
    level: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    ts: Mapped[datetime]
    created_at: Mapped[datetime] = _created()
