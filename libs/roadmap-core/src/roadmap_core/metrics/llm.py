"""Metric families of LLM calls (recorded through ``roadmap_core.llm.observe``).

* ``roadmap_llm_calls_total{model, outcome}``: logical calls (SDK retries inside), by the
  model asked for and how they ended: ``ok`` or an ``LLMErrorReason``;
* ``roadmap_llm_call_duration_seconds{model}``: a call's wall time, retries and waits at
  the global limiter included;
* ``roadmap_llm_tokens_total{model, kind}``: ``prompt`` and ``completion`` tokens of every
  response that reported usage (rejected answers too: they were paid for);
* ``roadmap_llm_cost_usd_total{model}``: their price;
* ``roadmap_llm_requests_in_flight``: HTTP requests to the provider being served now;
* ``roadmap_llm_rate_limit_wait_seconds``: how long each request waited for the global
  limits (rate, tokens, calls in flight) before it was sent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from roadmap_core.metrics.processes import LOCAL

CALL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True, slots=True)
class LLMMetrics:
    calls: Counter
    duration: Histogram
    tokens: Counter
    cost: Counter
    in_flight: Gauge
    rate_wait: Histogram


@functools.cache
def llm_metrics() -> LLMMetrics:
    # Built on first use, after the process chose how to store metrics (processes.enable).
    return LLMMetrics(
        calls=Counter(
            "roadmap_llm_calls", "LLM calls by model and outcome (ok or the error reason)",
            ("model", "outcome"), registry=LOCAL,
        ),
        duration=Histogram(
            "roadmap_llm_call_duration_seconds", "Wall time of an LLM call, by model",
            ("model",), buckets=CALL_BUCKETS, registry=LOCAL,
        ),
        tokens=Counter(
            "roadmap_llm_tokens", "Tokens used by LLM calls, by model and kind",
            ("model", "kind"), registry=LOCAL,
        ),
        cost=Counter(
            "roadmap_llm_cost_usd", "Price of the tokens used, by model", ("model",),
            registry=LOCAL,
        ),
        in_flight=Gauge(
            "roadmap_llm_requests_in_flight", "HTTP requests to the LLM provider being served",
            registry=LOCAL, multiprocess_mode="livesum",
        ),
        rate_wait=Histogram(
            "roadmap_llm_rate_limit_wait_seconds",
            "Wait of each LLM request for the global limits before it is sent",
            buckets=WAIT_BUCKETS, registry=LOCAL,
        ),
    )  # fmt: skip
