"""LLM client for Roadmap Agent: structured outputs over the official ``openai`` SDK.

Bounds, all from :class:`roadmap_core.settings.LLMSettings`:

* timeouts: every HTTP attempt ``LLM_TIMEOUT_S``; a whole call at most
  :attr:`LLMClient.max_call_duration_s`;
* concurrency: at most ``LLM_CONCURRENCY`` calls in flight per process
  (``asyncio.Semaphore``);
* rate: at most ``LLM_RPM`` requests and ``LLM_TPM`` tokens per minute across all
  processes (Redis sliding window, :mod:`roadmap_core.llm.ratelimit`), SDK retries
  included, holding where the provider counts (``LLM_RATE_MARGIN_S``);
* in flight across all processes: at most ``LLM_MAX_IN_FLIGHT`` when set, and across
  the children of one content-worker replica ``WORKER_LLM_SLOTS``
  (:mod:`roadmap_core.llm.inflight`);
* retries: the SDK retries a request ``LLM_SDK_MAX_RETRIES`` times (408, 409, 429,
  5xx, timeouts; ``retry-after`` honoured up to ``LLM_MAX_RETRY_AFTER_S``); the task
  layer makes at most ``LLM_TASK_MAX_ATTEMPTS`` attempts. There is no other retry
  loop.

Worst-case HTTP requests for one roadmap of N concepts and V review rounds with
feedback (S = SDK retries, A = task attempts, R = repair rounds):

    (1 + S) * A * ((2 + R) + 3*N + V*(1 + R))

e.g. 3 * 3 * (4 + 120) = 1116 for N = 40 with the defaults; see
:func:`worst_case_requests` and ``docs/llm.md``.
"""

from roadmap_core.llm.budget import worst_case_requests
from roadmap_core.llm.client import CallContext, ChatMessage, DeltaHandler, LLMClient, StreamedText
from roadmap_core.llm.errors import RETRYABLE, LLMError, LLMErrorReason
from roadmap_core.llm.inflight import InFlightCap, RedisInFlightLimiter, fleet_cap, replica_cap
from roadmap_core.llm.ratelimit import (
    RateLimiter,
    RedisRateLimiter,
    Reservation,
    WindowLimits,
    estimate_tokens,
)
from roadmap_core.llm.schema import response_format, schema_name, strict_json_schema
from roadmap_core.llm.templates import PromptName, language_name, render, render_messages
from roadmap_core.llm.usage import (
    OUTCOME_OK,
    CollectingSink,
    LLMCallRecord,
    UsageSink,
    UsageTotals,
    cost_usd,
    price_for,
    usage_scope,
)

__all__ = [
    "OUTCOME_OK",
    "RETRYABLE",
    "CallContext",
    "ChatMessage",
    "CollectingSink",
    "DeltaHandler",
    "InFlightCap",
    "LLMCallRecord",
    "LLMClient",
    "LLMError",
    "LLMErrorReason",
    "PromptName",
    "RateLimiter",
    "RedisInFlightLimiter",
    "RedisRateLimiter",
    "Reservation",
    "StreamedText",
    "UsageSink",
    "UsageTotals",
    "WindowLimits",
    "cost_usd",
    "estimate_tokens",
    "fleet_cap",
    "language_name",
    "price_for",
    "render",
    "render_messages",
    "replica_cap",
    "response_format",
    "schema_name",
    "strict_json_schema",
    "usage_scope",
    "worst_case_requests",
]
