"""Pipeline observers: every step leaves start/finish log events with duration and usage;
planning steps also move the job's ``current_step`` and publish a ``step`` event."""

from __future__ import annotations

import uuid
from typing import Any

from roadmap_core.domain import JobStep, LogCategory, LogLevel
from roadmap_core.logdetails import StepFinishedDetails, StepInfo, StepStartedDetails
from roadmap_core.logship import emit
from roadmap_core.pipeline import StepOutcome
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.job_lifecycle import set_planning_step
from roadmap_worker_content.events import EventPublisher


class JobGone(Exception):
    """The job was cancelled or deleted, or another worker holds it now: stop, save nothing."""


def _category(step: JobStep) -> LogCategory:
    if step is JobStep.content_generation:
        return LogCategory.content
    if step is JobStep.revision:
        return LogCategory.review
    return LogCategory.workflow


class StepLogger:
    """Logs every pipeline step of one job (and concept, for content)."""

    def __init__(self, job_id: uuid.UUID, concept_id: uuid.UUID | None = None) -> None:
        self.job_id = job_id
        self.concept_id = concept_id

    async def step_started(self, step: JobStep, info: StepInfo) -> None:
        emit(
            f"{step.value} started",
            job_id=self.job_id,
            concept_id=self.concept_id,
            category=_category(step),
            step=step.value,
            details=StepStartedDetails(**info.model_dump()),
        )

    async def step_finished(self, step: JobStep, outcome: StepOutcome) -> None:
        usage = outcome.usage
        emit(
            f"{step.value} {'finished' if outcome.ok else 'failed'}"
            + (f": {outcome.error}" if outcome.error else ""),
            job_id=self.job_id,
            concept_id=self.concept_id,
            level=LogLevel.info if outcome.ok else LogLevel.warning,
            category=_category(step),
            step=step.value,
            details=StepFinishedDetails(
                **outcome.info.model_dump(),
                ok=outcome.ok,
                error=outcome.error,
                llm_calls=usage.calls,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=str(usage.cost_usd),
            ),
            duration_ms=outcome.duration_ms,
        )


class PlanningObserver(StepLogger):
    """Before each planning step that calls the LLM, checks that this worker still holds
    the job (a cancel or a takeover stops it there) and records the step; publishes
    every step.

    The claim itself recorded ``claimed_step`` and proved the hold a moment ago, and
    validation calls no LLM: neither costs a database round trip. ``pending_intent``
    (set by the caller) is saved with the next recorded step, in the same statement.
    """

    def __init__(
        self,
        job_id: uuid.UUID,
        token: str,
        db: ProcessDatabase,
        progress: EventPublisher,
        claimed_step: JobStep,
    ) -> None:
        super().__init__(job_id)
        self._token = token
        self._db = db
        self._progress = progress
        self._unrecorded_first: JobStep | None = claimed_step
        self.pending_intent: dict[str, Any] | None = None

    async def step_started(self, step: JobStep, info: StepInfo) -> None:
        if step is self._unrecorded_first:
            self._unrecorded_first = None
        elif step is not JobStep.validation or self.pending_intent is not None:
            async with self._db.transaction() as session:
                held = await set_planning_step(
                    session, self.job_id, self._token, step, intent=self.pending_intent
                )
            if not held:
                raise JobGone(f"job {self.job_id} is no longer planned by this worker")
            self.pending_intent = None
        await self._progress.step(self.job_id, step)
        await super().step_started(step, info)
