"""Retention: delete execution logs older than LOG_RETENTION_DAYS, a bounded chunk at a time.

Single-active across every process and replica: the sweep runs only while it
holds a session-level PostgreSQL advisory lock on its one connection (released
on exit, or by the server if the process dies). Each chunk commits on its own so
no long transaction holds locks or bloats WAL.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.logs import (
    delete_logs_before,
    release_retention_lock,
    try_retention_lock,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepResult:
    ran: bool  # False: another process held the lock
    deleted: int = 0
    chunks: int = 0


async def sweep(
    db: ProcessDatabase,
    *,
    retention_days: int,
    chunk: int,
    pause_s: float = 0.0,
    now: datetime | None = None,
) -> SweepResult:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    async with db.engine.connect() as conn:
        locked = await try_retention_lock(conn)
        await conn.commit()
        if not locked:
            return SweepResult(ran=False)
        deleted = chunks = 0
        try:
            while True:
                n = await delete_logs_before(conn, cutoff, chunk=chunk)
                await conn.commit()
                deleted += n
                chunks += 1
                if n < chunk:
                    break
                if pause_s:
                    await asyncio.sleep(pause_s)
        finally:
            try:
                await conn.rollback()
                await release_retention_lock(conn)
                await conn.commit()
            except Exception:  # a broken connection released the lock with itself
                log.debug("could not release the retention lock", exc_info=True)
    if deleted:
        log.info("retention sweep deleted %d log events older than %s", deleted, cutoff)
    return SweepResult(ran=True, deleted=deleted, chunks=chunks)


async def sweep_periodically(
    db: ProcessDatabase,
    *,
    interval_s: float,
    retention_days: int,
    chunk: int,
    pause_s: float,
) -> None:
    """Sweep every ``interval_s`` (first run after a random part of it, to spread replicas)."""
    await asyncio.sleep(random.uniform(0, min(interval_s, 60.0)))  # noqa: S311 - jitter
    while True:
        try:
            await sweep(db, retention_days=retention_days, chunk=chunk, pause_s=pause_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention sweep failed; next try in %.0fs", interval_s)
        await asyncio.sleep(interval_s)
