"""The worker's parts in-process: batch parsing, retention sweep, loop watchdog."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from roadmap_core.aio import BackgroundLoop
from roadmap_core.contracts import LogEvent
from roadmap_core.ids import new_id
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.logs import RETENTION_LOCK_KEY
from roadmap_worker_logs.retention import sweep
from roadmap_worker_logs.watchdog import LoopWatchdog
from roadmap_worker_logs.writer import WriterStats, parse_batch, write_events


def _event(ts: datetime, job: uuid.UUID | None = None) -> LogEvent:
    return LogEvent(event_id=new_id(), job_id=job, message="m", ts=ts)


def test_parse_batch_skips_and_counts_invalid_events() -> None:
    good = _event(datetime.now(UTC)).model_dump(mode="json")
    events, invalid = parse_batch({"events": [good, {**good, "level": "loud"}, {"x": 1}]})
    assert ([str(e.event_id) for e in events], invalid) == ([good["event_id"]], 2)
    assert parse_batch({"nope": []}) == ([], 1)
    assert parse_batch(["not", "a", "dict"]) == ([], 1)


async def test_retention_deletes_only_old_rows_in_bounded_chunks(
    db: ProcessDatabase, pg: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    stats = WriterStats()
    old = [_event(now - timedelta(days=31, seconds=i)) for i in range(25)]
    edge = [_event(now - timedelta(days=29))]
    fresh = [_event(now) for _ in range(5)]
    assert await write_events(db, old + edge + fresh, stats) == 31

    result = await sweep(db, retention_days=30, chunk=10, now=now)
    assert (result.ran, result.deleted, result.chunks) == (True, 25, 3)
    left = {r["event_id"] for r in await pg.fetch("SELECT event_id FROM execution_logs")}
    assert left == {e.event_id for e in edge + fresh}
    again = await sweep(db, retention_days=30, chunk=10, now=now)
    assert (again.deleted, again.chunks) == (0, 1)


async def test_retention_is_single_active(db: ProcessDatabase, pg: asyncpg.Connection) -> None:
    now = datetime.now(UTC)
    await write_events(db, [_event(now - timedelta(days=40)) for _ in range(3)], WriterStats())
    assert await pg.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_KEY)
    try:
        busy = await sweep(db, retention_days=30, chunk=10, now=now)
        assert (busy.ran, busy.deleted) == (False, 0)
        assert await pg.fetchval("SELECT count(*) FROM execution_logs") == 3
    finally:
        await pg.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK_KEY)
    done = await sweep(db, retention_days=30, chunk=10, now=now)
    assert (done.ran, done.deleted) == (True, 3)
    # The sweep released its lock: someone else can take it now.
    assert await pg.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_KEY)
    await pg.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK_KEY)


async def _blocks_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # noqa: ASYNC251 - the stall under test


def test_watchdog_reports_a_stalled_loop_with_its_stack(caplog: pytest.LogCaptureFixture) -> None:
    loop = BackgroundLoop("watchdog-test")
    loop.start()
    ident = loop.run(_ident())
    dog = LoopWatchdog(loop.loop, ident, threshold_s=0.2, interval_s=0.05)
    dog.start()
    try:
        with caplog.at_level(logging.WARNING, logger="roadmap_worker_logs.watchdog"):
            loop.run(_blocks_the_loop(0.8), timeout=5)
            deadline = time.monotonic() + 5
            while dog.max_lag_s < 0.5 and time.monotonic() < deadline:
                time.sleep(0.05)
        messages = [r.getMessage() for r in caplog.records]
        stalled = [m for m in messages if "stalled" in m]
        assert len(stalled) == 1
        assert "_blocks_the_loop" in stalled[0]
        assert any("ran again" in m for m in messages)
        assert dog.stalls == 1
        assert dog.max_lag_s >= 0.5
    finally:
        dog.stop()
        loop.stop()


async def _ident() -> int:
    return threading.get_ident()


def test_a_quiet_loop_raises_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    loop = BackgroundLoop("watchdog-quiet")
    loop.start()
    dog = LoopWatchdog(loop.loop, loop.run(_ident()), threshold_s=0.2, interval_s=0.02)
    dog.start()
    try:
        with caplog.at_level(logging.WARNING, logger="roadmap_worker_logs.watchdog"):
            loop.run(asyncio.sleep(0.3), timeout=5)
        assert dog.stalls == 0
        assert not [r for r in caplog.records if "stalled" in r.getMessage()]
    finally:
        dog.stop()
        loop.stop()


_HUNG_SHUTDOWN = """
import time
from celery.signals import worker_shutting_down
import roadmap_worker_logs.app
from roadmap_core import celery_shutdown as guard
guard.STACKS_AFTER_S = 0.2
guard.EXIT_AFTER_S = 0.5
worker_shutting_down.send(sender="logs@test", sig="SIGTERM", how="Cold", exitcode=1)
def hung_in_broker_teardown():
    time.sleep(120)
hung_in_broker_teardown()
raise SystemExit(3)
"""


def test_a_cold_shutdown_that_hangs_ends_itself_after_writing_the_stacks() -> None:
    # Bounded by subprocess.run's timeout: a shutdown that never ends raises TimeoutExpired.
    result = subprocess.run(
        [sys.executable, "-c", _HUNG_SHUTDOWN],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0"},
    )
    assert result.returncode == 0, result.stderr
    assert "in hung_in_broker_teardown" in result.stderr
    assert "cold shutdown still running after 0.5 s" in result.stderr


_FORKING = """
import gc
from celery import signals
import roadmap_worker_logs.app
signals.worker_init.send(sender=None)  # what the main process does before the pool forks
print(gc.get_freeze_count())
"""


def test_the_main_process_freezes_its_objects_before_the_pool_forks(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _FORKING],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "REDIS_URL": "redis://127.0.0.1:9/0",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 10_000
