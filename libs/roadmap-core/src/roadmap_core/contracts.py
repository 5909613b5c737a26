"""Task contracts: queue names, task names, payloads and ``send_*`` helpers.

Producers (the API, the reconciler) send tasks **by name** through these helpers
so they never import worker code. Payloads carry ids only; the database holds
everything else. Workers validate the payload on entry with the same models.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from celery import Celery
from kombu import Producer
from pydantic import BaseModel, ConfigDict, Field

from roadmap_core.domain import LogCategory, LogLevel

CONTENT_QUEUE: Final = "content_generation"
# Mentor-chat answers: consumed by their own worker processes, so an answer never waits
# behind bulk generation.
CHAT_QUEUE: Final = "chat"
LOGS_QUEUE: Final = "logs"
QUEUES: Final = (CONTENT_QUEUE, CHAT_QUEUE, LOGS_QUEUE)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanJob(Payload):
    job_id: uuid.UUID


class GenerateConcepts(Payload):
    """Generate every queued item of these concepts (a small batch of one job)."""

    job_id: uuid.UUID
    concept_ids: list[uuid.UUID] = Field(min_length=1, max_length=32)


class ApplyReview(Payload):
    job_id: uuid.UUID
    round_id: uuid.UUID


class RetryFailed(Payload):
    job_id: uuid.UUID


class RegenerateConcept(Payload):
    """Generate the items of one concept that the API re-queued with instructions."""

    job_id: uuid.UUID
    concept_id: uuid.UUID


class CancelJob(Payload):
    job_id: uuid.UUID


class Reconcile(Payload):
    pass


class AnswerChat(Payload):
    """Write the answer (an assistant message the API stored ``pending``) of a chat turn."""

    job_id: uuid.UUID
    message_id: uuid.UUID


class LogEvent(BaseModel):
    """One execution-log event, created at its source with its own id."""

    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID
    job_id: uuid.UUID | None = None
    concept_id: uuid.UUID | None = None
    level: LogLevel = LogLevel.info
    category: LogCategory = LogCategory.workflow
    step: str | None = Field(default=None, max_length=64)
    message: str = Field(max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float | None = None
    ts: datetime


MAX_LOG_BATCH: Final = 10_000


class WriteLogBatch(Payload):
    events: list[LogEvent] = Field(min_length=1, max_length=MAX_LOG_BATCH)


class RetentionSweep(Payload):
    pass


@dataclass(frozen=True, slots=True)
class Contract:
    name: str
    queue: str
    payload: type[Payload]


PLAN_JOB: Final = Contract("content.plan_job", CONTENT_QUEUE, PlanJob)
GENERATE_CONCEPTS: Final = Contract("content.generate_concepts", CONTENT_QUEUE, GenerateConcepts)
APPLY_REVIEW: Final = Contract("content.apply_review", CONTENT_QUEUE, ApplyReview)
RETRY_FAILED: Final = Contract("content.retry_failed", CONTENT_QUEUE, RetryFailed)
REGENERATE_CONCEPT: Final = Contract("content.regenerate_concept", CONTENT_QUEUE, RegenerateConcept)
CANCEL_JOB: Final = Contract("content.cancel_job", CONTENT_QUEUE, CancelJob)
RECONCILE: Final = Contract("content.reconcile", CONTENT_QUEUE, Reconcile)
ANSWER_CHAT: Final = Contract("chat.answer", CHAT_QUEUE, AnswerChat)
WRITE_LOG_BATCH: Final = Contract("logs.write_batch", LOGS_QUEUE, WriteLogBatch)
RETENTION_SWEEP: Final = Contract("logs.retention_sweep", LOGS_QUEUE, RetentionSweep)

CONTRACTS: Final[dict[str, Contract]] = {
    c.name: c
    for c in (
        PLAN_JOB,
        GENERATE_CONCEPTS,
        APPLY_REVIEW,
        RETRY_FAILED,
        REGENERATE_CONCEPT,
        CANCEL_JOB,
        RECONCILE,
        ANSWER_CHAT,
        WRITE_LOG_BATCH,
        RETENTION_SWEEP,
    )
}


def send(
    app: Celery, contract: Contract, payload: Payload, *, producer: Producer | None = None
) -> str:
    """Publish ``payload`` for ``contract``; returns the task id.

    Blocking (kombu is synchronous): async callers run it in a thread. ``producer`` (one
    acquired from ``app.producer_or_acquire()``) lets a caller publish several messages
    through one producer, e.g. inside ``producer.batch()``.
    """
    if not isinstance(payload, contract.payload):
        raise TypeError(f"{contract.name} takes {contract.payload.__name__}")
    result = app.send_task(
        contract.name,
        args=(payload.model_dump(mode="json"),),
        queue=contract.queue,
        ignore_result=True,
        producer=producer,
    )
    return str(result.id)


def send_plan_job(app: Celery, job_id: uuid.UUID) -> str:
    return send(app, PLAN_JOB, PlanJob(job_id=job_id))


def send_generate_concepts(app: Celery, job_id: uuid.UUID, concept_ids: list[uuid.UUID]) -> str:
    return send(app, GENERATE_CONCEPTS, GenerateConcepts(job_id=job_id, concept_ids=concept_ids))


def send_apply_review(app: Celery, job_id: uuid.UUID, round_id: uuid.UUID) -> str:
    return send(app, APPLY_REVIEW, ApplyReview(job_id=job_id, round_id=round_id))


def send_retry_failed(app: Celery, job_id: uuid.UUID) -> str:
    return send(app, RETRY_FAILED, RetryFailed(job_id=job_id))


def send_regenerate_concept(app: Celery, job_id: uuid.UUID, concept_id: uuid.UUID) -> str:
    return send(app, REGENERATE_CONCEPT, RegenerateConcept(job_id=job_id, concept_id=concept_id))


def send_cancel_job(app: Celery, job_id: uuid.UUID) -> str:
    return send(app, CANCEL_JOB, CancelJob(job_id=job_id))


def send_reconcile(app: Celery) -> str:
    return send(app, RECONCILE, Reconcile())


def send_answer_chat(app: Celery, job_id: uuid.UUID, message_id: uuid.UUID) -> str:
    return send(app, ANSWER_CHAT, AnswerChat(job_id=job_id, message_id=message_id))


def send_log_batch(app: Celery, events: Sequence[LogEvent | Mapping[str, Any]]) -> str:
    """Publish one batch of log events.

    ``LogEvent`` models are validated here as usual. Plain mappings (what the
    emitter in ``roadmap_core.logship`` builds, already JSON-shaped) are sent as
    they are, to keep pydantic off the producer's hot path: the logs worker
    validates every event on entry and skips (and counts) the invalid ones.
    """
    models = [e for e in events if isinstance(e, LogEvent)]
    if len(models) == len(events):
        return send(app, WRITE_LOG_BATCH, WriteLogBatch(events=models))
    if not 1 <= len(events) <= MAX_LOG_BATCH:
        raise ValueError(f"a log batch holds 1..{MAX_LOG_BATCH} events, not {len(events)}")
    body = [e.model_dump(mode="json") if isinstance(e, LogEvent) else dict(e) for e in events]
    result = app.send_task(
        WRITE_LOG_BATCH.name,
        args=({"events": body},),
        queue=WRITE_LOG_BATCH.queue,
        ignore_result=True,
    )
    return str(result.id)


def send_retention_sweep(app: Celery) -> str:
    return send(app, RETENTION_SWEEP, RetentionSweep())
