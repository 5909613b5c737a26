"""Hooks the worker uses to log pipeline steps and update the job's ``current_step``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from roadmap_core.domain import JobStep
from roadmap_core.llm.errors import LLMError
from roadmap_core.llm.usage import UsageTotals, usage_scope
from roadmap_core.logdetails import StepInfo


@dataclass(slots=True)
class StepOutcome:
    """How a step ended. ``info`` holds what the step reports (round, errors, counts)."""

    duration_ms: float = 0.0
    usage: UsageTotals = field(default_factory=UsageTotals)
    ok: bool = True
    error: str | None = None
    info: StepInfo = field(default_factory=StepInfo)


class PipelineObserver(Protocol):
    async def step_started(self, step: JobStep, info: StepInfo) -> None: ...

    async def step_finished(self, step: JobStep, outcome: StepOutcome) -> None: ...


@asynccontextmanager
async def observe_step(
    observer: PipelineObserver | None, step: JobStep, info: StepInfo | None = None
) -> AsyncIterator[StepOutcome]:
    """Time ``step``, sum its LLM usage and report start/finish to ``observer``.

    The body may fill in ``outcome.info`` or mark ``outcome.ok = False``; an
    exception marks the step failed (with the LLM error reason when there is one)
    and propagates.
    """
    outcome = StepOutcome(info=(info or StepInfo()).model_copy())
    if observer is not None:
        await observer.step_started(step, outcome.info.model_copy())
    started = time.perf_counter()
    with usage_scope() as totals:
        try:
            yield outcome
        except BaseException as exc:
            outcome.ok = False
            outcome.error = (
                f"{exc.reason}: {exc.message}" if isinstance(exc, LLMError) else type(exc).__name__
            )
            raise
        finally:
            outcome.duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
            outcome.usage = totals
            if observer is not None:
                await observer.step_finished(step, outcome)
