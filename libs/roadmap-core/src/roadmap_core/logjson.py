"""JSON log lines, one object per record, for every service (``LOG_JSON=true``).

Each line has ``ts``, ``level``, ``logger``, ``msg``, whatever the call passed in
``extra=``, and — with tracing on — the ``trace_id`` and ``span_id`` of the span it was
logged in (set on the record by ``opentelemetry-instrumentation-logging``), so a line
leads to its trace and a trace to its lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# What the logging instrumentation adds; written as trace_id/span_id, or not at all.
_TRACE = frozenset({"otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName"})
_NO_ID = "0"


class JsonFormatter(logging.Formatter):
    def __init__(self, context: Callable[[], dict[str, Any] | None] | None = None) -> None:
        """``context``: more fields for every line (the API's request id)."""
        super().__init__()
        self._context = context

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = getattr(record, "otelTraceID", _NO_ID)
        if trace_id != _NO_ID:
            entry["trace_id"] = trace_id
            entry["span_id"] = getattr(record, "otelSpanID", _NO_ID)
        if self._context is not None:
            more = self._context()
            if more:
                entry.update(more)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _TRACE and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def json_lines(logger: logging.Logger) -> None:
    """Format every handler of ``logger`` as JSON lines (a worker's loggers, once Celery
    has set them up)."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
