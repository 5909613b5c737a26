"""The logs worker end to end: real Postgres, real Redis, a running `celery worker -Q logs`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest
from celery import Celery
from redis import Redis

from roadmap_core.contracts import LogEvent, send_log_batch, send_retention_sweep
from roadmap_core.ids import new_id
from roadmap_core.settings import plain_postgres_url
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.logs import page_job_logs
from roadmap_devservers.embedded import EmbeddedRedis
from roadmap_worker_logs.broker import UNACKED_INDEX_KEY

APP_NAME = "roadmap-worker-logs"


async def wait_until(
    predicate: Callable[[], Any], within: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def count_rows(pg: asyncpg.Connection, job_id: uuid.UUID | None = None) -> int:
    if job_id is None:
        return int(await pg.fetchval("SELECT count(*) FROM execution_logs"))
    return int(await pg.fetchval("SELECT count(*) FROM execution_logs WHERE job_id = $1", job_id))


async def rows_settle_at(pg: asyncpg.Connection, expected: int, within: float = 60.0) -> None:
    await wait_until(
        lambda: _equals(count_rows(pg), expected), within, f"{expected} stored log events"
    )
    await asyncio.sleep(0.5)  # nothing more (no duplicate) arrives late
    assert await count_rows(pg) == expected
    assert await pg.fetchval("SELECT count(DISTINCT event_id) FROM execution_logs") == expected


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


def events(n: int, job_id: uuid.UUID | None = None, **fields: Any) -> list[LogEvent]:
    job = job_id or uuid.uuid4()
    now = datetime.now(UTC)
    return [
        LogEvent(
            event_id=new_id(),
            job_id=job,
            message=f"event {i}",
            ts=now + timedelta(microseconds=i),
            **fields,
        )
        for i in range(n)
    ]


def wait_emitter(proc: Any, timeout: float = 120.0) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return stats


async def blocked_writers(pg: asyncpg.Connection) -> int:
    return int(
        await pg.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            " AND datname = current_database() AND wait_event_type = 'Lock'",
            APP_NAME,
        )
    )


async def test_events_from_an_emitter_process_appear_in_order_for_their_job(
    start_worker: Callable[..., Any],
    run_emitter: Callable[..., Any],
    redis_url: str,
    pg: asyncpg.Connection,
    db: ProcessDatabase,
) -> None:
    start_worker(concurrency=2)
    jobs = {uuid.uuid4(): 700, uuid.uuid4(): 450}
    stats = wait_emitter(run_emitter(redis_url, jobs))
    assert (stats["emitted"], stats["shipped"], stats["dropped"]) == (1150, 1150, 0)
    await rows_settle_at(pg, 1150)
    async with db.sessions() as session:
        for job, n in jobs.items():
            seen: list[str] = []
            cursor = None
            while True:
                rows, cursor = await page_job_logs(session, job, limit=100, after=cursor)
                seen.extend(r.message for r in rows)
                if cursor is None:
                    break
            assert seen == [f"{i} of {job}" for i in range(n)]


async def test_a_batch_delivered_twice_is_stored_once(
    start_worker: Callable[..., Any], producer: Celery, pg: asyncpg.Connection
) -> None:
    worker = start_worker(concurrency=2)
    batch = events(300)
    send_log_batch(producer, batch)
    send_log_batch(producer, batch)
    send_log_batch(producer, batch[:150] + events(50))
    await rows_settle_at(pg, 350)
    await wait_until(
        lambda: sum(h["batches"] for h in worker.heartbeats().values()) == 3, 10, "heartbeats"
    )
    beats = worker.heartbeats().values()
    assert sum(h["inserted"] for h in beats) == 350
    assert sum(h["duplicates"] for h in beats) == 450


async def test_invalid_events_are_skipped_and_counted_not_poisoning_the_batch(
    start_worker: Callable[..., Any], producer: Celery, pg: asyncpg.Connection
) -> None:
    worker = start_worker(concurrency=1)
    good = [e.model_dump(mode="json") for e in events(3)]
    good[1]["message"] = "nul \x00 inside"
    good[2]["details"] = {"k": "nul \x00 inside"}
    bad = {**good[0], "event_id": str(uuid.uuid4()), "level": "loud"}
    send_log_batch(producer, [good[0], bad, good[1], good[2]])
    await rows_settle_at(pg, 3)
    messages = await pg.fetch("SELECT message, details FROM execution_logs ORDER BY ts")
    assert [r["message"] for r in messages] == ["event 0", "nul  inside", "event 2"]
    assert json.loads(messages[2]["details"]) == {"k": "nul  inside"}
    await wait_until(
        lambda: sum(h["invalid"] for h in worker.heartbeats().values()) == 1, 10, "heartbeat"
    )


@pytest.mark.parametrize("crash", ["pool child", "whole worker"])
async def test_sigkill_mid_batch_loses_and_duplicates_nothing(
    crash: str,
    start_worker: Callable[..., Any],
    run_emitter: Callable[..., Any],
    producer: Celery,
    redis_url: str,
    clean: str,
    pg: asyncpg.Connection,
) -> None:
    worker = start_worker(concurrency=1)
    job = uuid.uuid4()
    already = events(100, job)
    send_log_batch(producer, already)
    await rows_settle_at(pg, 100)

    # Hold the table so the worker's next INSERT waits inside its transaction: the
    # message is received, the batch half-done, nothing committed or acked.
    blocker = await asyncpg.connect(_dsn(clean))
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("LOCK TABLE execution_logs IN EXCLUSIVE MODE")
    try:
        send_log_batch(producer, already)  # a redelivery of committed events as well
        stats = wait_emitter(run_emitter(redis_url, {job: 1000}))
        assert stats["shipped"] == 1000
        await wait_until(lambda: blocked_writers(pg), 30, "the worker to block mid-batch")
        if crash == "pool child":
            (child,) = worker.children()
            os.kill(child, signal.SIGKILL)
            # The parent sees the child lost and requeues its message (acks_late +
            # reject_on_worker_lost); a new child takes over.
            await wait_until(
                lambda: worker.children() not in ([], [child]), 30, "a replacement child"
            )
        else:
            worker.kill_all()
    finally:
        await tx.rollback()
        await blocker.close()

    if crash == "whole worker":
        assert await count_rows(pg) == 100
        # A dead consumer's unacked messages come back after the logs queue's visibility
        # timeout (minutes in production, tests/reliability times it); age them instead.
        client = Redis.from_url(redis_url)
        try:
            unacked = cast(
                "list[tuple[bytes, float]]",
                client.zrange(UNACKED_INDEX_KEY, 0, -1, withscores=True),
            )
            assert unacked, "the killed worker held no unacked message"
            client.zadd(UNACKED_INDEX_KEY, {tag: score - 7200 for tag, score in unacked})
        finally:
            client.close()
        start_worker(concurrency=1)
    await rows_settle_at(pg, 1100)
    assert await count_rows(pg, job) == 1100


def _dsn(url: str) -> str:
    return plain_postgres_url(url)


async def test_broker_outage_while_emitting_loses_nothing(
    start_worker: Callable[..., Any],
    run_emitter: Callable[..., Any],
    own_redis: EmbeddedRedis,
    pg: asyncpg.Connection,
) -> None:
    start_worker(concurrency=1, redis=own_redis.url)
    job = uuid.uuid4()
    proc = run_emitter(own_redis.url, {job: 1600}, pause=True)
    assert proc.stdout.readline().strip() == "paused"
    await rows_settle_at(pg, 800)  # the first half is stored: nothing in Redis to lose
    own_redis.stop()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    await asyncio.sleep(1.5)  # the emitter buffers and retries meanwhile
    own_redis.start()  # same port, empty
    stats = wait_emitter(proc)
    assert (stats["shipped"], stats["dropped"]) == (1600, 0)
    assert stats["send_failures"] >= 1
    await rows_settle_at(pg, 1600, within=90)


async def test_loop_engine_and_pool_are_per_process(
    start_worker: Callable[..., Any], producer: Celery, clean: str, pg: asyncpg.Connection
) -> None:
    worker = start_worker(concurrency=2)
    # Make both children busy at once: each blocks mid-batch on the locked table.
    blocker = await asyncpg.connect(_dsn(clean))
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("LOCK TABLE execution_logs IN EXCLUSIVE MODE")
    try:
        send_log_batch(producer, events(10))
        send_log_batch(producer, events(10))
        await wait_until(lambda: _equals(blocked_writers(pg), 2), 30, "both children busy")
    finally:
        await tx.rollback()
        await blocker.close()
    for _ in range(20):
        send_log_batch(producer, events(10))
    await rows_settle_at(pg, 220)
    await wait_until(
        lambda: sum(h["batches"] for h in worker.heartbeats().values()) == 22, 10, "heartbeats"
    )

    beats = worker.heartbeats()
    assert len(beats) == 2
    assert worker.pid not in beats
    backends = [set(info["backend_pids"]) for info in beats.values()]
    for info in beats.values():
        assert info["batches"] >= 1
        assert len(info["loop_ids"]) == 1, "one event loop for all of a process's tasks"
        assert 1 <= len(info["backend_pids"]) <= 3  # pool 2 + overflow 1
    assert not backends[0] & backends[1], "a connection was shared across processes"
    rows = await pg.fetch(
        "SELECT pid FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        APP_NAME,
    )
    assert {r["pid"] for r in rows} <= backends[0] | backends[1]


async def test_retention_sweep_task_deletes_only_old_rows(
    start_worker: Callable[..., Any], producer: Celery, pg: asyncpg.Connection
) -> None:
    start_worker(concurrency=1, env={"LOGS_RETENTION_CHUNK": "7", "LOG_RETENTION_DAYS": "30"})
    old = events(20)
    for e in old:
        e.ts -= timedelta(days=31)
    send_log_batch(producer, old + events(5))
    await rows_settle_at(pg, 25)
    send_retention_sweep(producer)
    await rows_settle_at(pg, 5)
    assert await pg.fetchval("SELECT min(ts) FROM execution_logs") > datetime.now(UTC) - timedelta(
        days=1
    )


async def test_a_cold_shutdown_runs_its_handlers_without_an_error(
    start_worker: Callable[..., Any],
) -> None:
    # As the image runs it (REMAP_SIGTERM=SIGQUIT): SIGTERM is Celery's cold shutdown, whose
    # handlers run in the real main process (stderr is Celery's logging proxy there), the
    # cold-shutdown guard among them.
    worker = start_worker(concurrency=1, env={"REMAP_SIGTERM": "SIGQUIT"})
    await wait_until(lambda: len(worker.heartbeats()) == 1, 30, "the child's heartbeat")
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.proc.wait, 30) == 0
    log = worker.log()
    assert "Cold shutdown" in log, log
    assert "Signal handler" not in log, log
