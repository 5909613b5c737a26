"""Execution-log emitter: ``emit`` from anywhere, shipped in batches to the ``logs`` queue.

``emit`` only builds a small tuple and appends it to a per-process deque: no
pydantic, no I/O, no lock on the normal path, so it never blocks an event loop
and costs a few microseconds. A daemon thread (:class:`LogShipper`, started by
:func:`configure_logship`) turns buffered tuples into ``LogEvent``-shaped JSON
dicts and publishes them with :func:`roadmap_core.contracts.send_log_batch`,
``LOG_BATCH_SIZE`` at a time or every ``LOG_FLUSH_INTERVAL_MS``. The logs
worker validates them.

When the broker is down the buffer is kept and the batch retried with backoff.
The buffer is bounded by ``LOG_BUFFER_MAX`` (in flight included); events that do
not fit are dropped, counted in :func:`stats` and reported by a rate-limited
warning. Events emitted before :func:`configure_logship` wait in the same bounded
buffer. After ``fork()`` the child starts with an empty buffer and no shipper:
call :func:`configure_logship` again in the child (e.g. ``worker_process_init``).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from celery import Celery
from uuid_utils import uuid7

from roadmap_core import telemetry
from roadmap_core.contracts import send_log_batch
from roadmap_core.domain import LogCategory, LogLevel
from roadmap_core.logdetails import LogDetails, TruncatedDetails
from roadmap_core.settings import LogShipSettings

log = logging.getLogger(__name__)

MESSAGE_MAX_CHARS: Final = 2000  # LogEvent.message max_length
STEP_MAX_CHARS: Final = 64  # LogEvent.step max_length
TRACE_ID_KEY: Final = "trace_id"
SPAN_ID_KEY: Final = "span_id"
DROP_WARNING_INTERVAL_S: Final = 10.0
BACKOFF_INITIAL_S: Final = 0.1
BACKOFF_MAX_S: Final = 5.0
ATEXIT_TIMEOUT_S: Final = 5.0

_DEFAULTS = LogShipSettings.model_fields
_LEVELS: Final = frozenset(LogLevel)
_CATEGORIES: Final = frozenset(LogCategory)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# A buffered event: (event_id, job_id, concept_id, level, category, step, message,
# details_json | None, duration_ms, ts_us). Converted to JSON dicts off the hot path.
_Record = tuple[Any, Any, Any, str, str, str | None, str, str | None, float | None, int]


@dataclass(frozen=True, slots=True)
class LogShipStats:
    """Counters of this process. ``emitted == shipped + pending + dropped`` (give or take
    events in motion while the snapshot is taken)."""

    emitted: int
    shipped: int
    dropped: int
    pending: int
    send_failures: int
    configured: bool

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "emitted": self.emitted,
            "shipped": self.shipped,
            "dropped": self.dropped,
            "pending": self.pending,
            "send_failures": self.send_failures,
            "configured": self.configured,
        }


class _State:
    """Everything ``emit`` touches, replaced wholesale in a forked child."""

    def __init__(self) -> None:
        self.buffer: deque[_Record] = deque()
        # Room the deque may fill: LOG_BUFFER_MAX minus the batch the shipper holds.
        self.capacity: int = _DEFAULTS["log_buffer_max"].default
        self.buffer_max: int = self.capacity
        self.details_max: int = _DEFAULTS["log_details_max_bytes"].default
        self.batch_size: int = _DEFAULTS["log_batch_size"].default
        self.last_ts_us: int = 0
        # Written by the shipper thread only.
        self.taken = 0
        self.shipped = 0
        self.dropped_late = 0
        self.send_failures = 0
        self.inflight = 0
        # Cold path (drops) only.
        self.drop_lock = threading.Lock()
        self.dropped_at_emit = 0
        self.last_drop_warning = 0.0
        self.dropped_since_warning = 0
        self.shipper: LogShipper | None = None


_state = _State()


def _new_ts_us() -> int:
    # Strictly increasing per process so a job's events sort in emission order
    # by (ts, event_id) even within one microsecond or across a clock step back.
    ts = time.time_ns() // 1000
    last = _state.last_ts_us
    if ts <= last:
        ts = last + 1
    _state.last_ts_us = ts
    return ts


def _details_json(details: LogDetails, ids: tuple[str, str] | None, limit: int) -> str:
    # pydantic-core writes the JSON itself: no dict in between, the cheapest way here.
    text = details.model_dump_json(exclude_none=True)
    if ids is not None and details.trace_id is None:
        # Every kind is an object holding at least its kind: the ids go before its brace.
        text = f'{text[:-1]},"{TRACE_ID_KEY}":"{ids[0]}","{SPAN_ID_KEY}":"{ids[1]}"}}'
    size = len(text) if text.isascii() else len(text.encode())
    if size <= limit:
        return text
    marker = TruncatedDetails(
        original_kind=details.kind,
        original_bytes=size,
        # Half the room, so the marker fits with the preview's quotes escaped.
        preview=text.encode()[: max(0, limit // 2 - 64)].decode(errors="ignore"),
        trace_id=ids[0] if ids else details.trace_id,
        span_id=ids[1] if ids else details.span_id,
    )
    return marker.model_dump_json(exclude_none=True)


def emit(
    message: str,
    *,
    job_id: uuid.UUID | None = None,
    concept_id: uuid.UUID | None = None,
    level: LogLevel = LogLevel.info,
    category: LogCategory = LogCategory.workflow,
    step: str | None = None,
    details: LogDetails,
    duration_ms: float | None = None,
) -> None:
    """Record one execution-log event. Never raises, never blocks (a deque append).

    ``details`` is one of the declared kinds (:mod:`roadmap_core.logdetails`), the
    shapes the API documents. Over-long ``message``/``step`` are cut to the contract's
    limits, ``details`` larger than LOG_DETAILS_MAX_BYTES (as JSON) are replaced by a
    ``truncated`` marker, and an unknown level/category falls back to info/workflow.
    """
    state = _state
    try:
        if len(state.buffer) >= state.capacity:
            _count_drop(state, 1, "the log buffer is full")
            return
        ts_us = _new_ts_us()
        if type(message) is not str:
            message = str(message)
        if len(message) > MESSAGE_MAX_CHARS:
            message = message[:MESSAGE_MAX_CHARS]
        if step is not None and len(step) > STEP_MAX_CHARS:
            step = step[:STEP_MAX_CHARS]
        # A typo'd level or category must not make the worker reject the event.
        if level not in _LEVELS:
            level = LogLevel.info
        if category not in _CATEGORIES:
            category = LogCategory.workflow
        # The logs worker writes the event in a span of this trace (and keeps the ids in
        # the row): the execution log leads to the trace and back.
        ids = telemetry.current_ids() if telemetry.enabled else None
        state.buffer.append(
            (
                uuid7(nanoseconds=ts_us * 1000),
                job_id,
                concept_id,
                level,
                category,
                step,
                message,
                _details_json(details, ids, state.details_max),
                duration_ms,
                ts_us,
            )
        )
        if len(state.buffer) >= state.batch_size:
            shipper = state.shipper
            if shipper is not None and not shipper.wake.is_set():
                shipper.wake.set()
    except Exception:  # emit must never break its caller
        _count_drop(state, 1, "an event could not be recorded")


def _count_drop(state: _State, count: int, reason: str) -> None:
    now = time.monotonic()
    with state.drop_lock:
        state.dropped_at_emit += count
        state.dropped_since_warning += count
        if now - state.last_drop_warning < DROP_WARNING_INTERVAL_S:
            return
        dropped, state.dropped_since_warning = state.dropped_since_warning, 0
        state.last_drop_warning = now
        total = state.dropped_at_emit + state.dropped_late
    try:
        log.warning(
            "execution-log events dropped: %s (%d since the last warning, %d in total,"
            " buffer max %d)",
            reason,
            dropped,
            total,
            state.buffer_max,
        )
    except Exception:  # a broken logging handler must not break emit
        return


class _JsonMaker:
    """Turns buffered records into LogEvent-shaped JSON dicts (shipper thread only).

    Caches what repeats from one event to the next (a job's id, the current second's
    ISO prefix): this runs for every event, in the producer's process.
    """

    def __init__(self) -> None:
        self._ids: dict[Any, str] = {}
        self._second = -1
        self._prefix = ""

    def _id(self, value: Any) -> str | None:
        if value is None:
            return None
        text = self._ids.get(value)
        if text is None:
            if len(self._ids) >= 4096:
                self._ids.clear()
            text = self._ids[value] = str(value)
        return text

    def _ts(self, ts_us: int) -> str:
        second, micros = divmod(ts_us, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micros:06d}+00:00"

    def batch(self, records: list[_Record]) -> list[dict[str, Any]]:
        # One json.loads for every event's details: far cheaper than one per event.
        details = json.loads("[" + ",".join(r[7] or "{}" for r in records) + "]")
        return [self.event(r, d) for r, d in zip(records, details, strict=True)]

    def event(self, record: _Record, details: dict[str, Any]) -> dict[str, Any]:
        eid, job, concept, level, category, step, message, _, duration, ts_us = record
        return {
            "event_id": str(eid),
            "job_id": self._id(job),
            "concept_id": self._id(concept),
            "level": str(level),
            "category": str(category),
            "step": step,
            "message": message,
            "details": details,
            "duration_ms": duration,
            "ts": self._ts(ts_us),
        }


class LogShipper:
    """The background thread of one process that publishes buffered events in batches."""

    def __init__(self, celery_app: Celery, settings: LogShipSettings, *, source: str) -> None:
        self.app = celery_app
        self.source = source
        self.batch_size = settings.log_batch_size
        self.interval_s = settings.log_flush_interval_ms / 1000
        self.buffer_max = settings.log_buffer_max
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._progress = threading.Condition()
        self._take_lock = threading.Lock()  # shipper vs flush only; emit never takes it
        self._flush_waiters = 0
        self._batch: list[_Record] = []
        self._to_json = _JsonMaker()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=f"logship-{source}", daemon=True)

    @property
    def running(self) -> bool:
        return self._pid == os.getpid() and self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stats(self) -> LogShipStats:
        return stats()

    def flush(self, timeout: float) -> bool:
        """Ship everything emitted so far; True when it all left within ``timeout`` seconds."""
        state = _state
        if not self.running:
            return not state.buffer and state.inflight == 0
        with self._take_lock:  # not mid-take: every event is in the buffer or counted
            target = state.taken + len(state.buffer)
        deadline = time.monotonic() + timeout
        with self._progress:
            self._flush_waiters += 1
            try:
                self.wake.set()
                while state.shipped + state.dropped_late < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._progress.wait(remaining)
                    self.wake.set()
            finally:
                self._flush_waiters -= 1
        return True

    def shutdown(self, timeout: float) -> bool:
        """Ship what is buffered (up to ``timeout`` s), then stop; what is left is dropped
        and counted. True when nothing was dropped."""
        if not self.running:
            return True
        before = _state.dropped_late
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self.wake.set()
        self._thread.join(timeout + 1.0)
        if _state.shipper is self:
            _state.shipper = None
        return _state.dropped_late == before and not self._thread.is_alive()

    def detach(self, timeout: float = 5.0) -> None:
        """Stop the thread without dropping anything: unsent events go back to the buffer."""
        if not self.running:
            return
        self._deadline = None
        self._stop.set()
        self.wake.set()
        self._thread.join(timeout)

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        state = _state
        failures = 0
        while True:
            stopping = self._stop.is_set()
            if stopping and self._deadline is None:
                break  # detached: unsent events go back to the buffer
            if not self._batch:
                if stopping and not state.buffer:
                    break
                if (
                    not stopping
                    and len(state.buffer) < self.batch_size
                    and not (self._flush_waiters)
                ):
                    self.wake.wait(self.interval_s)
                self.wake.clear()
                self._take(state)
                if not self._batch:
                    self._notify()
                    continue
            if stopping and self._deadline is not None and time.monotonic() > self._deadline:
                self._drop_remaining(state)
                break
            if self._send(state):
                failures = 0
                continue
            failures += 1
            delay = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** min(failures - 1, 16))
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
            if not stopping:
                self._stop.wait(delay)
            elif self._deadline is not None and time.monotonic() + delay > self._deadline:
                self._drop_remaining(state)
                break
            else:
                time.sleep(delay)
        self._give_back(state)
        self._notify()

    def _take(self, state: _State) -> None:
        buffer, batch = state.buffer, self._batch
        with self._take_lock:
            for _ in range(self.batch_size):
                try:
                    batch.append(buffer.popleft())
                except IndexError:
                    break
            n = len(batch)
            state.taken += n
        if n:
            state.inflight = n
            state.capacity = self.buffer_max - n

    def _send(self, state: _State) -> bool:
        batch = self._batch
        try:
            send_log_batch(self.app, self._to_json.batch(batch))
        except Exception as exc:
            state.send_failures += 1
            if state.send_failures == 1 or state.send_failures % 50 == 0:
                log.warning(
                    "could not ship %d execution-log events (%s: %s); keeping them and retrying"
                    " (%d send failures so far)",
                    len(batch),
                    type(exc).__name__,
                    exc,
                    state.send_failures,
                )
            return False
        state.shipped += len(batch)
        batch.clear()
        state.inflight = 0
        state.capacity = self.buffer_max
        self._notify()
        return True

    def _drop_remaining(self, state: _State) -> None:
        lost = len(self._batch)
        self._batch.clear()
        while True:
            try:
                state.buffer.popleft()
            except IndexError:
                break
            state.taken += 1
            lost += 1
        state.inflight = 0
        state.capacity = self.buffer_max
        if lost:
            state.dropped_late += lost
            log.warning(
                "execution-log shipper of %s stopped with the broker unreachable:"
                " %d events dropped",
                self.source,
                lost,
            )

    def _give_back(self, state: _State) -> None:
        if self._batch:
            state.buffer.extendleft(reversed(self._batch))
            state.taken -= len(self._batch)
            self._batch.clear()
        state.inflight = 0
        state.capacity = self.buffer_max

    def _notify(self) -> None:
        if self._flush_waiters:
            with self._progress:
                self._progress.notify_all()


def configure_logship(celery_app: Celery, settings: LogShipSettings, *, source: str) -> LogShipper:
    """Start this process's shipper (again after ``fork()``); events already buffered
    go out with the first batches. Replaces a shipper this process already runs."""
    state = _state
    previous = state.shipper
    if previous is not None:
        previous.detach()
    state.batch_size = settings.log_batch_size
    state.details_max = settings.log_details_max_bytes
    state.buffer_max = settings.log_buffer_max
    state.capacity = settings.log_buffer_max
    shipper = LogShipper(celery_app, settings, source=source)
    state.shipper = shipper
    shipper.start()
    return shipper


def flush(timeout: float = 5.0) -> bool:
    """Ship everything emitted so far; True when it all left within ``timeout`` seconds."""
    shipper = _state.shipper
    if shipper is None:
        return not _state.buffer
    return shipper.flush(timeout)


def shutdown(timeout: float = 5.0) -> bool:
    """Flush (up to ``timeout`` s) and stop the shipper; True when nothing was dropped."""
    shipper = _state.shipper
    if shipper is None:
        return not _state.buffer
    return shipper.shutdown(timeout)


def reset(timeout: float = 5.0) -> LogShipStats:
    """Stop the shipper (shipping what it can within ``timeout``), then forget every
    buffered event and counter; returns the counters as they were. For tests and
    for processes that hand their emitter to a new configuration from scratch."""
    global _state
    shutdown(timeout)
    before = stats()
    _state = _State()
    return before


def stats() -> LogShipStats:
    state = _state
    pending = len(state.buffer)
    inflight = state.inflight
    return LogShipStats(
        emitted=state.taken + pending + state.dropped_at_emit,
        shipped=state.shipped,
        dropped=state.dropped_at_emit + state.dropped_late,
        pending=pending + inflight,
        send_failures=state.send_failures,
        configured=state.shipper is not None and state.shipper.running,
    )


def _after_fork_in_child() -> None:
    # The parent ships what it buffered; locks and the thread do not survive fork.
    global _state
    _state = _State()


def _at_exit() -> None:
    state = _state
    if state.shipper is not None:
        state.shipper.shutdown(ATEXIT_TIMEOUT_S)
    if state.buffer:
        log.warning(
            "%d execution-log events were never shipped (logship not configured in pid %d)",
            len(state.buffer),
            os.getpid(),
        )


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)

__all__ = [
    "LogShipStats",
    "LogShipper",
    "configure_logship",
    "emit",
    "flush",
    "reset",
    "shutdown",
    "stats",
]
