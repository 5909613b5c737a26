"""Execution logs: idempotent bulk insert and per-job keyset pagination."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.contracts import LogEvent
from roadmap_core.domain import LogLevel
from roadmap_db.models import ExecutionLog
from roadmap_db.repositories.cursor import decode_cursor, encode_cursor

LEVEL_ORDER = [LogLevel.debug, LogLevel.info, LogLevel.warning, LogLevel.error]


def _row(event: LogEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "job_id": event.job_id,
        "concept_id": event.concept_id,
        "level": event.level.value,
        "category": event.category.value,
        "step": event.step,
        "message": event.message,
        "details": event.details,
        "duration_ms": event.duration_ms,
        "ts": event.ts,
    }


async def insert_log_events(session: AsyncSession, events: Sequence[LogEvent]) -> int:
    """One multi-row INSERT; events already stored (redelivery) are skipped. Returns rows added."""
    if not events:
        return 0
    stmt = (
        insert(ExecutionLog)
        .values([_row(e) for e in events])
        .on_conflict_do_nothing(index_elements=[ExecutionLog.event_id])
        .returning(ExecutionLog.id)
    )
    return len((await session.execute(stmt)).all())


async def page_job_logs(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    limit: int,
    after: str | None = None,
    min_level: LogLevel | None = None,
) -> tuple[list[ExecutionLog], str | None]:
    """Logs of one job in emission order, ``limit`` at a time; returns (rows, next cursor)."""
    stmt = select(ExecutionLog).where(ExecutionLog.job_id == job_id)
    if after is not None:
        ts_raw, event_raw = decode_cursor(after, 2)
        stmt = stmt.where(
            tuple_(ExecutionLog.ts, ExecutionLog.event_id)
            > tuple_(datetime.fromisoformat(ts_raw), uuid.UUID(event_raw))
        )
    if min_level is not None:
        stmt = stmt.where(
            ExecutionLog.level.in_([lv.value for lv in LEVEL_ORDER[LEVEL_ORDER.index(min_level) :]])
        )
    stmt = stmt.order_by(ExecutionLog.ts, ExecutionLog.event_id).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].ts.isoformat(), rows[-1].event_id)
    return rows, next_cursor


async def delete_logs_before(session: AsyncSession, cutoff: datetime, *, chunk: int) -> int:
    """Delete at most ``chunk`` of the oldest events older than ``cutoff``; returns rows deleted."""
    oldest = (
        select(ExecutionLog.id)
        .where(ExecutionLog.ts < cutoff)
        .order_by(ExecutionLog.ts)
        .limit(chunk)
        .scalar_subquery()
    )
    result = await session.execute(delete(ExecutionLog).where(ExecutionLog.id.in_(oldest)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
