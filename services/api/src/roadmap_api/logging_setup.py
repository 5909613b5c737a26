"""Structured JSON logs on stdout, one object per line, with the request id (and, with
tracing on, the trace and span ids) attached."""

from __future__ import annotations

import atexit
import logging
import sys
from logging.handlers import QueueHandler, QueueListener
from queue import SimpleQueue
from typing import Any

from roadmap_api.context import current_request_id
from roadmap_api.redaction import redact_every_handler
from roadmap_core import logjson


def _request_context() -> dict[str, Any] | None:
    request_id = current_request_id()
    return {"request_id": request_id} if request_id else None


class JsonFormatter(logjson.JsonFormatter):
    """The API's lines: the request id too."""

    def __init__(self) -> None:
        super().__init__(_request_context)


def configure_logging(level: str, *, json_lines: bool, access_log: bool) -> None:
    """Install one stdout handler on the root logger unless the host already configured one
    (a test runner, or a ``--log-config``); either way every handler masks credentials
    (``redaction.py``).

    Records are formatted where they are logged but written by a background thread
    (``QueueHandler`` → ``QueueListener``): a slow stdout (a busy log collector) must not
    stall the event loop, which writes one access-log line per request.
    """
    root = logging.getLogger()
    logging.getLogger("roadmap_api").setLevel(level.upper())
    if access_log:
        # Ours logs the route template and a request id; uvicorn's logs the raw path and
        # query string (with credentials masked, below).
        logging.getLogger("uvicorn.access").disabled = True
    if root.handlers:
        redact_every_handler()
        return
    # Record attributes no line of ours prints, skipped for every record (the logging
    # HOWTO's "Optimization" section): caller lookup, thread and process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _listener
    writer = logging.StreamHandler(sys.stdout)
    queue: SimpleQueue[logging.LogRecord] = SimpleQueue()
    handler = _FormattingQueueHandler(queue)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(logging.BASIC_FORMAT))
    _listener = QueueListener(queue, writer)
    _listener.start()
    atexit.register(_listener.stop)
    root.addHandler(handler)
    root.setLevel(level.upper())
    redact_every_handler()


_listener: QueueListener | None = None


class _FormattingQueueHandler(QueueHandler):
    """Formats in the caller (so the request id context applies), writes in the listener."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The record is ours alone (this is the only handler): reuse it for the line
        # instead of building a second one.
        record.msg = self.format(record)
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return record
