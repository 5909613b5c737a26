"""The API's server span: what an unsampled request still carries, and what it skips."""

from __future__ import annotations

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

from roadmap_api import tracing
from roadmap_core import telemetry

ROUTE = "/api/v1/roadmaps"


def _inside_request(
    sampler: Sampler, monkeypatch: pytest.MonkeyPatch
) -> tuple[bool, dict[str, str] | None]:
    """(instrumentations on?, the task-message headers) while a request is served."""
    provider = TracerProvider(sampler=sampler)
    monkeypatch.setattr(telemetry, "tracer", provider.get_tracer)
    monkeypatch.setattr(telemetry, "enabled", True)
    scope = {"type": "http", "method": "POST", "path": ROUTE, "headers": [], "scheme": "http"}
    span, token, method = tracing.start(scope)
    try:
        return is_instrumentation_enabled(), telemetry.carrier()
    finally:
        tracing.end(span, token, method, ROUTE, 202)


def _sampled(traceparent: str) -> bool:
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 0x01)


def test_an_unsampled_request_skips_the_instrumentations_but_carries_its_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instrumented, headers = _inside_request(ALWAYS_OFF, monkeypatch)
    assert not instrumented
    # The workers continue the trace unsampled too (parent-based sampling).
    assert headers is not None
    assert not _sampled(headers["traceparent"])
    assert is_instrumentation_enabled()  # only for the request's duration


def test_a_sampled_request_is_instrumented(monkeypatch: pytest.MonkeyPatch) -> None:
    instrumented, headers = _inside_request(ALWAYS_ON, monkeypatch)
    assert instrumented
    assert headers is not None
    assert _sampled(headers["traceparent"])
