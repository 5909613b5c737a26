"""The ids execution-log events carry: only of spans that are recorded."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

from roadmap_core import telemetry


@pytest.fixture
def tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "enabled", True)


def _ids_inside_span(sampler: Sampler) -> tuple[tuple[str, str] | None, trace.SpanContext]:
    tracer = TracerProvider(sampler=sampler).get_tracer(__name__)
    with tracer.start_as_current_span("work") as span:
        return telemetry.current_ids(), span.get_span_context()


def test_a_sampled_span_gives_its_ids_in_hex(tracing_on: None) -> None:
    ids, context = _ids_inside_span(ALWAYS_ON)
    assert ids == (format(context.trace_id, "032x"), format(context.span_id, "016x"))


def test_a_span_the_sampler_left_out_gives_none(tracing_on: None) -> None:
    ids, context = _ids_inside_span(ALWAYS_OFF)
    assert context.is_valid
    assert not context.trace_flags.sampled
    assert ids is None


def test_outside_any_span_or_with_tracing_off_there_are_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telemetry, "enabled", True)
    assert telemetry.current_ids() is None
    monkeypatch.setattr(telemetry, "enabled", False)
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer(__name__)
    with tracer.start_as_current_span("work"):
        assert telemetry.current_ids() is None
