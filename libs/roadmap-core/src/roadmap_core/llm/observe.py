"""What every LLM call reports about itself: metrics, and (with tracing on) its span.

One place, so a new call path (a streaming chat, a web search) is instrumented by
wrapping it the same way :class:`roadmap_core.llm.client.LLMClient` does::

    with observed_call(model, step="chat") as call:
        ...                                 # the request(s)
        call.usage(record)                  # for each response that reported usage

An :class:`LLMError` raised inside sets the outcome to its reason; anything else that
escapes counts as ``unexpected`` (``cancelled`` when the task was cancelled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from roadmap_core.llm.errors import LLMError
from roadmap_core.llm.usage import OUTCOME_OK, LLMCallRecord
from roadmap_core.metrics.llm import llm_metrics


@dataclass(slots=True)
class ObservedCall:
    model: str
    step: str
    outcome: str = OUTCOME_OK
    # perf_counter() when the call got its slot: the duration counts from here.
    started: float = field(default_factory=time.perf_counter)

    def slot_acquired(self) -> None:
        self.started = time.perf_counter()

    def usage(self, record: LLMCallRecord) -> None:
        """Count a response's tokens and cost (under the model that answered)."""
        metrics = llm_metrics()
        metrics.tokens.labels(record.model, "prompt").inc(record.prompt_tokens)
        metrics.tokens.labels(record.model, "completion").inc(record.completion_tokens)
        metrics.cost.labels(record.model).inc(float(record.cost_usd))
        if record.outcome != OUTCOME_OK:
            self.outcome = record.outcome


@contextmanager
def observed_call(model: str, *, step: str) -> Iterator[ObservedCall]:
    call = ObservedCall(model, step)
    try:
        yield call
    except LLMError as exc:
        call.outcome = str(exc.reason)
        raise
    except asyncio.CancelledError:
        call.outcome = "cancelled"
        raise
    except BaseException:
        call.outcome = "unexpected"
        raise
    finally:
        metrics = llm_metrics()
        metrics.calls.labels(model, call.outcome).inc()
        metrics.duration.labels(model).observe(time.perf_counter() - call.started)
