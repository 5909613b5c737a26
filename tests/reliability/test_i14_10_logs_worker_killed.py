"""Issue 14, item 10: the batches a killed logs worker held arrive in minutes, exactly once.

A logs worker reserves several batches ahead (prefetch) and acknowledges each only after its
rows committed. Killed as a whole (main process and pool, SIGKILL: no chance to hand
anything back), its unacknowledged batches stay with the broker until their visibility
timeout. The logs worker keeps them under a visibility timeout of its own
(``LOGS_VISIBILITY_TIMEOUT_S``, default 180 s, not the content queue's hour), and its
replacement puts them back in the queue within that plus one restore sweep.

The test holds the log table locked so the worker is stuck mid-batch with more batches
reserved, kills it, starts a new one, and times how long the held events take to arrive.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import pytest
from redis import Redis

from roadmap_core.settings import plain_postgres_url
from roadmap_worker_logs.broker import UNACKED_INDEX_KEY, restore_bound_s
from roadmap_worker_logs.settings import LogsWorkerSettings
from tests.support.db import Db, wait_for
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

EVENTS = 4_000  # 20 batches of 200
VISIBILITY_S = 20
# Kill → all events stored: the visibility timeout, one restore sweep, the new worker's
# start-up and the writes themselves. Today's broker keeps them for an hour.
WITHIN_S = VISIBILITY_S + 60
SETTINGS = {
    "LOGS_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
    "LOGS_WRITE_TIMEOUT_S": "5",
    "LOGS_WRITE_RETRY_MAX_DELAY_S": "2",
    "LOGS_PREFETCH_MULTIPLIER": "4",
}


def test_i14_10_default_settings_bound_redelivery_to_five_minutes() -> None:
    settings = LogsWorkerSettings(database_url="postgresql://x@127.0.0.1/x")
    assert settings.logs_visibility_timeout_s < settings.broker_visibility_timeout_s
    assert restore_bound_s(settings) <= 300


async def _blocked_writers(db: Db) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query ILIKE '%execution_logs%'"
        )
    )


async def test_i14_10_killed_logs_worker_batches_arrive_within_minutes_exactly_once(
    stack: Stack, db: Db
) -> None:
    worker = stack.logs_worker(concurrency=1, **SETTINGS)
    job = uuid.uuid4()

    async def stored() -> int:
        return int(await db.fetchval("SELECT count(*) FROM execution_logs WHERE job_id = $1", job))

    # Hold the table: the worker's first INSERT waits inside its transaction, and the
    # batches behind it stay reserved (unacknowledged) by the same worker.
    blocker = await asyncpg.connect(plain_postgres_url(stack.database_url))
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("LOCK TABLE execution_logs IN EXCLUSIVE MODE")
    try:
        emitter = await stack.log_emitter(job, EVENTS)
        out, err = await asyncio.wait_for(emitter.communicate(), 120)
        assert emitter.returncode == 0, err.decode(errors="replace")[-3000:]
        shipped = json.loads(out.decode().strip().splitlines()[-1])
        assert (shipped["emitted"], shipped["dropped"]) == (EVENTS, 0), shipped

        async def blocked() -> bool:
            return await _blocked_writers(db) >= 1

        await wait_for(blocked, within=60, what="the logs worker to block mid-batch")
        redis = Redis.from_url(stack.redis_url)
        try:
            held = int(redis.zcard(UNACKED_INDEX_KEY)) + int(redis.zcard("unacked_index"))
        finally:
            redis.close()
        assert held >= 2, f"the worker reserved {held} batches; the test needs it to hold some"
        worker.kill()
        killed_at = time.monotonic()
    finally:
        await tx.rollback()
        await blocker.close()

    assert await stored() == 0
    stack.logs_worker(concurrency=1, **SETTINGS)

    async def all_stored() -> bool:
        return await stored() >= EVENTS

    remaining = WITHIN_S - (time.monotonic() - killed_at)
    try:
        await wait_for(all_stored, within=remaining, what="every event")
    except AssertionError:
        late = time.monotonic() - killed_at
        raise AssertionError(
            f"{await stored()} of {EVENTS} events stored {late:.0f}s after the kill"
        ) from None
    took = time.monotonic() - killed_at
    await asyncio.sleep(2.0)  # a late duplicate would land now
    assert await stored() == EVENTS
    distinct = await db.fetchval(
        "SELECT count(DISTINCT message) FROM execution_logs WHERE job_id = $1", job
    )
    assert distinct == EVENTS
    print(
        f"i14-10: {held} batches held by the killed worker; all {EVENTS} events stored once,"
        f" {took:.1f}s after the kill (visibility timeout {VISIBILITY_S}s)"
    )
