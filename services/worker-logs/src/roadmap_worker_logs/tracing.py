"""The logs worker's part of a roadmap's trace.

Execution-log events carry the trace and span ids of the code that emitted them
(``details.trace_id``/``span_id``, see ``roadmap_core.logship``). A batch mixes the events
of many roadmaps, so rather than one span for the batch, the write gets a
``logs.write_batch`` span in every trace the batch holds, as a child of the span that
emitted that trace's first event of the batch: each roadmap's trace shows when its logs
reached PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from roadmap_core import telemetry
from roadmap_core.contracts import LogEvent
from roadmap_core.logship import SPAN_ID_KEY, TRACE_ID_KEY

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def _parents(events: Sequence[LogEvent]) -> dict[str, tuple[str, int]]:
    """trace id → (span id of its first event in the batch, events of that trace)."""
    found: dict[str, tuple[str, int]] = {}
    for event in events:
        trace_id, span_id = event.details.get(TRACE_ID_KEY), event.details.get(SPAN_ID_KEY)
        if not (isinstance(trace_id, str) and isinstance(span_id, str)):
            continue
        if not (_TRACE_ID.match(trace_id) and _SPAN_ID.match(span_id)):
            continue
        first, count = found.get(trace_id, (span_id, 0))
        found[trace_id] = (first, count + 1)
    return found


@contextmanager
def write_spans(events: Sequence[LogEvent]) -> Iterator[None]:
    """Around the write of ``events``: a span in each trace they belong to."""
    if not telemetry.enabled:
        yield
        return
    tracer = telemetry.tracer(__name__)
    spans = []
    for trace_id, (span_id, count) in _parents(events).items():
        parent = SpanContext(
            int(trace_id, 16),
            int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        spans.append(
            tracer.start_span(
                "logs.write_batch",
                context=trace.set_span_in_context(NonRecordingSpan(parent)),
                kind=SpanKind.CONSUMER,
                attributes={"roadmap.logs.events": count, "roadmap.logs.batch": len(events)},
            )
        )
    try:
        yield
    finally:
        for span in spans:
            span.end()
