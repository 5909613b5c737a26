"""Validate a batch of log events and write it in one statement on the process loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import DataError, IntegrityError

from roadmap_core.contracts import LogEvent
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.logs import insert_log_events
from roadmap_worker_logs.metrics import logs_metrics
from roadmap_worker_logs.tracing import write_spans

log = logging.getLogger(__name__)

_EVENTS = TypeAdapter(list[LogEvent])
_LOOP_TOKENS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = (
    weakref.WeakKeyDictionary()
)


def loop_token(loop: asyncio.AbstractEventLoop) -> str:
    """A name for ``loop`` that no other loop ever gets (``id()`` values are reused)."""
    token = _LOOP_TOKENS.get(loop)
    if token is None:
        token = _LOOP_TOKENS[loop] = uuid.uuid4().hex
    return token


@dataclass
class WriterStats:
    """What this process wrote; reported in its heartbeat."""

    batches: int = 0
    inserted: int = 0
    duplicates: int = 0
    invalid: int = 0
    rejected: int = 0
    loop_ids: set[str] = field(default_factory=set)
    backend_pids: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "batches": self.batches,
                "inserted": self.inserted,
                "duplicates": self.duplicates,
                "invalid": self.invalid,
                "rejected": self.rejected,
                "loop_ids": sorted(self.loop_ids),
                "backend_pids": sorted(self.backend_pids),
            }


def parse_batch(payload: Any) -> tuple[list[LogEvent], int]:
    """The valid events of a ``logs.write_batch`` payload and how many were invalid.

    One bad event (a producer bug) is skipped and counted; it never poisons the batch.
    """
    raw = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(raw, list):
        log.error("logs.write_batch payload without an events list; dropped")
        return [], 1
    try:
        return _EVENTS.validate_python(raw), 0
    except ValidationError:
        pass
    events: list[LogEvent] = []
    first_error: str | None = None
    for item in raw:
        try:
            events.append(LogEvent.model_validate(item))
        except ValidationError as exc:
            first_error = first_error or str(exc.errors(include_input=False)[:1])
    invalid = len(raw) - len(events)
    log.warning(
        "skipped %d invalid log events of a batch of %d: %s", invalid, len(raw), first_error
    )
    return events, invalid


async def _insert(db: ProcessDatabase, events: Sequence[LogEvent], stats: WriterStats) -> int:
    async with db.transaction() as session:
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        backend_pid = int(raw.driver_connection.get_server_pid())  # type: ignore[union-attr]
        inserted = await insert_log_events(session, events)
    with stats.lock:
        stats.backend_pids.add(backend_pid)
    return inserted


async def _insert_isolating(
    db: ProcessDatabase, events: Sequence[LogEvent], stats: WriterStats
) -> tuple[int, int]:
    """Insert; if the database refuses the data, halve until the refused events are found.

    Returns (inserted, rejected). Connection and timeout errors propagate: the task retries.
    """
    try:
        return await _insert(db, events, stats), 0
    except (DataError, IntegrityError) as exc:
        if len(events) == 1:
            log.error(
                "log event %s refused by the database (%s); skipped",
                events[0].event_id,
                type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
            )
            return 0, 1
    half = len(events) // 2
    left = await _insert_isolating(db, events[:half], stats)
    right = await _insert_isolating(db, events[half:], stats)
    return left[0] + right[0], left[1] + right[1]


async def write_events(
    db: ProcessDatabase, events: Sequence[LogEvent], stats: WriterStats, *, invalid: int = 0
) -> int:
    """Write ``events`` (one transaction per statement); returns rows added."""
    with write_spans(events):
        inserted, rejected = await _insert_isolating(db, events, stats) if events else (0, 0)
    _observe(events, inserted, rejected, invalid)
    with stats.lock:
        stats.batches += 1
        stats.inserted += inserted
        stats.duplicates += len(events) - inserted - rejected
        stats.invalid += invalid
        stats.rejected += rejected
        stats.loop_ids.add(loop_token(asyncio.get_running_loop()))
    return inserted


def _observe(events: Sequence[LogEvent], inserted: int, rejected: int, invalid: int) -> None:
    metrics = logs_metrics()
    metrics.batch_size.observe(len(events) + invalid)
    if events:
        oldest = min(e.ts for e in events)
        metrics.lag.observe(max(0.0, (datetime.now(UTC) - oldest).total_seconds()))
    for result, n in (
        ("inserted", inserted),
        ("duplicate", len(events) - inserted - rejected),
        ("invalid", invalid),
        ("rejected", rejected),
    ):
        if n:
            metrics.events.labels(result).inc(n)
