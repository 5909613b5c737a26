"""What every LLM call reports about itself: metrics, and (with tracing on) its span.

One place, so a new call path (a streaming chat, a web search) is instrumented by
wrapping it the same way :class:`roadmap_core.llm.client.LLMClient` does::

    with observed_call(model, step="chat", job_id=job_id) as call:
        call.slot_acquired()                # if it first waits for a concurrency slot
        ...                                 # the request(s)
        call.usage(record)                  # for each response that reported usage

An :class:`LLMError` raised inside sets the outcome to its reason; anything else that
escapes counts as ``unexpected`` (``cancelled`` when the task was cancelled).

The span follows OpenTelemetry's GenAI conventions (``chat <model>``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens``…); the HTTP requests under it
(retries too) are the ``httpx2`` instrumentation's spans.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from roadmap_core import telemetry
from roadmap_core.llm.errors import LLMError
from roadmap_core.llm.usage import OUTCOME_OK, LLMCallRecord
from roadmap_core.metrics.llm import llm_metrics


@dataclass(slots=True)
class ObservedCall:
    model: str
    step: str
    outcome: str = OUTCOME_OK
    span: Span | None = None
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
        if self.span is not None:
            self.span.set_attributes(
                {
                    "gen_ai.response.model": record.model,
                    "gen_ai.usage.input_tokens": record.prompt_tokens,
                    "gen_ai.usage.output_tokens": record.completion_tokens,
                    "roadmap.llm.cost_usd": float(record.cost_usd),
                    **({"gen_ai.response.id": record.request_id} if record.request_id else {}),
                }
            )


@contextmanager
def observed_call(
    model: str, *, step: str, job_id: uuid.UUID | None = None
) -> Iterator[ObservedCall]:
    call = ObservedCall(model, step)
    with ExitStack() as stack:
        if telemetry.enabled:
            call.span = stack.enter_context(
                _tracer().start_as_current_span(
                    f"chat {model}",
                    kind=SpanKind.CLIENT,
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": model,
                        "roadmap.llm.step": step,
                        **({"roadmap.job_id": str(job_id)} if job_id else {}),
                    },
                    record_exception=False,
                    set_status_on_exception=False,
                )
            )
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
            if call.span is not None and call.outcome != OUTCOME_OK:
                call.span.set_attribute("error.type", call.outcome)
                call.span.set_status(StatusCode.ERROR, call.outcome)


def _tracer() -> Tracer:
    return telemetry.tracer(__name__)
