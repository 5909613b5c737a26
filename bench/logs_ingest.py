"""Benchmark 4 — execution-log ingest: rate, lag, producer cost, against a naive baseline.

Phases, each on an emptied ``execution_logs`` table, all in one run:

1. **paced** — ``producers`` emitter processes (``roadmap_core.logship.emit``, default
   LOG_* settings) offer ``paced_rate`` events/s in total for ``duration_s``; the real logs
   worker (``celery … roadmap_worker_logs.app:celery_app worker -Q logs -c 2``) stores them.
   Lag per event = row ``created_at`` (``now()`` of the inserting transaction, i.e. just
   before its commit) - event ``ts`` (taken in ``emit``): p50/p99/max. Producer cost per
   ``emit`` is timed inside the producers while their shipper threads run.
2. **saturated** — the same producers emit as fast as their shippers can take events
   (each pauses while it has more than two batches pending), so the pipeline runs at
   capacity: the sustained ingest rate is the rows committed per second in the window
   (first second excluded).
3. **baseline** — the naive design on the same machine and table: one Celery message per
   event, and a worker (prefork, ``-c 2``, one asyncpg connection per process) doing one
   INSERT + commit per message. Producers publish as fast as they can; same window rule.

Also measured in this process: ``emit`` cost in a tight loop (with and without details),
and the write statement alone (one batch of ``batch`` events): the multi-row VALUES list,
SQLAlchemy executemany, the ``unnest`` statement the worker uses, and COPY into a temp
staging table + INSERT … SELECT. Targets: ≥ 20,000 events/s, p99 lag ≤ 1 s at the paced
rate, ≥ 10x the baseline, ≤ 20 µs per ``emit``.

``run(...) -> dict`` (the runner's result shape) or ``python bench/logs_ingest.py [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

REPO_ROOT = Path(__file__).resolve().parents[1]
BASELINE_QUEUE = "logs_baseline"
BASELINE_TASK = "bench.logs_baseline.write_one"
TARGET_RATE = 20_000
TARGET_P99_S = 1.0
TARGET_RATIO = 10.0
TARGET_EMIT_US = 20.0

# ----------------------------------------------------------------------------------------
# The baseline worker: `celery -A bench.logs_ingest:baseline_app worker -Q logs_baseline`.
# ----------------------------------------------------------------------------------------

_BASELINE_INSERT = (
    "INSERT INTO execution_logs"
    " (event_id, job_id, concept_id, level, category, step, message, details, duration_ms, ts)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10) ON CONFLICT (event_id) DO NOTHING"
)


def _with_baseline_queue(app: Celery) -> Celery:
    from kombu import Exchange, Queue

    app.conf.update(
        task_queues=(Queue(BASELINE_QUEUE, Exchange(BASELINE_QUEUE), routing_key=BASELINE_QUEUE),),
        task_default_queue=BASELINE_QUEUE,
        task_routes={BASELINE_TASK: {"queue": BASELINE_QUEUE, "routing_key": BASELINE_QUEUE}},
    )
    return app


def _make_baseline_app() -> Celery:
    from celery.signals import worker_process_init

    from roadmap_core.aio import BackgroundLoop
    from roadmap_core.celery_app import create_celery_app
    from roadmap_core.contracts import LogEvent
    from roadmap_core.settings import RedisSettings, plain_postgres_url

    app = _with_baseline_queue(create_celery_app("bench-logs-baseline", RedisSettings()))
    state: dict[str, Any] = {}

    @worker_process_init.connect(weak=False)  # a local function: keep it referenced
    def _open(**_: Any) -> None:
        import asyncpg

        loop = BackgroundLoop("baseline-loop")
        loop.start()
        url = plain_postgres_url(os.environ["DATABASE_URL"])
        state["loop"] = loop
        state["conn"] = loop.run(asyncpg.connect(url))

    @app.task(name=BASELINE_TASK, acks_late=True, ignore_result=True)
    def write_one(event: dict[str, Any]) -> None:
        e = LogEvent.model_validate(event)
        row = (
            e.event_id, e.job_id, e.concept_id, e.level.value, e.category.value, e.step,
            e.message, json.dumps(e.details), e.duration_ms, e.ts,
        )  # fmt: skip
        state["loop"].run(state["conn"].execute(_BASELINE_INSERT, *row))

    return app


baseline_app = _make_baseline_app() if os.environ.get("ROADMAP_BENCH_BASELINE") else None

# ----------------------------------------------------------------------------------------
# Producers (one process each): `python bench/logs_ingest.py --producer '<json>'`.
# ----------------------------------------------------------------------------------------

# The JSON of an ``LlmCallDetails`` (roadmap_core.logdetails), the most frequent kind.
_DETAILS = {
    "kind": "llm_call",
    "model": "gpt-4o-mini",
    "prompt_tokens": 1234,
    "completion_tokens": 567,
    "cost_usd": "0.0005",
    "outcome": "ok",
}


def _producer(config: dict[str, Any]) -> dict[str, Any]:
    from roadmap_core import logship
    from roadmap_core.celery_app import create_celery_app
    from roadmap_core.domain import LogCategory
    from roadmap_core.logdetails import parse_produced
    from roadmap_core.settings import LogShipSettings, RedisSettings

    mode: str = config["mode"]
    job = uuid.UUID(config["job_id"])
    app = create_celery_app("bench-producer", RedisSettings(redis_url=config["redis_url"]))
    settings = LogShipSettings()
    if mode == "baseline":
        _with_baseline_queue(app)
    else:
        logship.configure_logship(app, settings, source="bench")
    emit = logship.emit
    details = parse_produced(_DETAILS)
    # Start together: say we are ready, then wait for the common start time.
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    stop_at = start_at + config["duration_s"]
    while time.time() < start_at:
        time.sleep(0.001)
    sent, emit_time = 0, 0.0
    tick = 0.005
    rate = config.get("rate", 0.0)
    t0 = time.perf_counter()
    from redis import Redis

    broker = Redis.from_url(config["redis_url"])
    queue = BASELINE_QUEUE if mode == "baseline" else "logs"
    backlog_max = 1000 if mode == "baseline" else 20  # messages: 1 or 500 events each
    checked = 0.0
    while time.time() < stop_at:
        if mode != "paced" and time.monotonic() - checked > 0.01:
            # Saturating producers must not starve the consumer of CPU (2 cores):
            # wait while the queue already holds more than the consumer's next moments.
            checked = time.monotonic()
            if int(broker.llen(queue)) > backlog_max:
                time.sleep(0.005)
                continue
        if mode == "baseline":
            for _ in range(50):
                event = _baseline_event(job, sent)
                app.send_task(
                    BASELINE_TASK, args=(event,), queue=BASELINE_QUEUE, ignore_result=True
                )
                sent += 1
            continue
        if mode == "paced":
            due = int(rate * (time.perf_counter() - t0)) - sent
            if due <= 0:
                time.sleep(tick)
                continue
        else:  # saturated: keep at most two batches waiting in this process
            if logship.stats().pending > 2 * settings.log_batch_size:
                time.sleep(0.001)
                continue
            due = settings.log_batch_size
        started = time.perf_counter()
        for i in range(sent, sent + due):
            emit(
                "llm call finished",
                job_id=job,
                category=LogCategory.llm,
                step="content_generation",
                details=details,
                duration_ms=float(i % 1000),
            )
        emit_time += time.perf_counter() - started
        sent += due
    flushed = True if mode == "baseline" else logship.flush(60)
    stats = logship.stats().as_dict()
    logship.shutdown(5)
    broker.close()
    return {
        "sent": sent,
        "flushed": flushed,
        "emit_us": (emit_time / sent * 1e6) if sent and mode != "baseline" else None,
        "stats": stats,
    }


def _baseline_event(job: uuid.UUID, i: int) -> dict[str, Any]:
    from roadmap_core.ids import new_id

    return {
        "event_id": str(new_id()),
        "job_id": str(job),
        "concept_id": None,
        "level": "info",
        "category": "llm",
        "step": "content_generation",
        "message": "llm call finished",
        "details": _DETAILS,
        "duration_ms": float(i % 1000),
        "ts": datetime.now(UTC).isoformat(),
    }


# ----------------------------------------------------------------------------------------
# Orchestration.
# ----------------------------------------------------------------------------------------


class _Worker:
    """A Celery worker subprocess in its own process group, stopped by pid/pgid."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker did not start:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(20)


def _env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "LOGS_", "LOG_"))}
    path = os.pathsep.join(p for p in (str(REPO_ROOT), keep.get("PYTHONPATH", "")) if p)
    return {
        **keep,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PYTHONPATH": path,
        "LOG_LEVEL": "WARNING",
        "LOGS_RETENTION_INTERVAL_S": "0",
        **extra,
    }


def _live_heartbeats(redis_url: str) -> int:
    from redis import Redis

    from roadmap_core.heartbeat import WorkerType, heartbeat_key

    client = Redis.from_url(redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match=heartbeat_key(WorkerType.logs, "*")))
    finally:
        client.close()


def _queue_len(redis_url: str, queue: str) -> int:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def _run_producers(
    n: int, base: dict[str, Any], log_dir: Path, timeout: float
) -> list[dict[str, Any]]:
    procs = []
    for i in range(n):
        err = (log_dir / f"producer-{base['mode']}-{i}.log").open("wb")
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, str(Path(__file__)), "--producer", json.dumps(base)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    cwd=REPO_ROOT,
                ),
                err,
            )
        )
    results = []
    try:
        for proc, _ in procs:  # every producer has imported its modules and connected
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a producer did not start; see {log_dir}")
        start_at = time.time() + 0.2
        for proc, _ in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start_at}\n")
            proc.stdin.flush()
        for proc, _ in procs:
            out, _ = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"a producer failed (exit {proc.returncode}); see {log_dir}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc, err in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            err.close()
    for r in results:
        r["start_at"] = start_at
    return results


async def _phase_rows(database_url: str, job: uuid.UUID, start_at: float, window: tuple[float, float]) -> dict[str, Any]:  # fmt: skip
    import asyncpg

    from roadmap_core.settings import plain_postgres_url

    conn = await asyncpg.connect(plain_postgres_url(database_url))
    try:
        lo = datetime.fromtimestamp(start_at + window[0], UTC)
        hi = datetime.fromtimestamp(start_at + window[1], UTC)
        row = await conn.fetchrow(
            "SELECT count(*) AS total,"
            " count(*) FILTER (WHERE created_at >= $2 AND created_at < $3) AS in_window,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - ts))"
            "   AS p50,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - ts))"
            "   AS p99,"
            " max(extract(epoch FROM created_at - ts)) AS max_lag"
            " FROM execution_logs WHERE job_id = $1",
            job,
            lo,
            hi,
        )
        assert row is not None
        return {k: (float(v) if v is not None else None) for k, v in row.items()}
    finally:
        await conn.close()


async def _count(database_url: str) -> int:
    import asyncpg

    from roadmap_core.settings import plain_postgres_url

    conn = await asyncpg.connect(plain_postgres_url(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM execution_logs"))
    finally:
        await conn.close()


async def _truncate(database_url: str) -> None:
    import asyncpg

    from roadmap_core.settings import plain_postgres_url

    conn = await asyncpg.connect(plain_postgres_url(database_url))
    try:
        await conn.execute("TRUNCATE execution_logs")
        await conn.execute("VACUUM ANALYZE execution_logs")
    finally:
        await conn.close()


def _wait_drained(database_url: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = asyncio.run(_count(database_url))
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


def _phase(
    mode: str,
    *,
    database_url: str,
    redis_url: str,
    producers: int,
    duration_s: float,
    log_dir: Path,
    rate: float = 0.0,
) -> dict[str, Any]:
    job = uuid.uuid4()
    base = {
        "mode": mode,
        "redis_url": redis_url,
        "job_id": str(job),
        "duration_s": duration_s,
        "rate": rate / producers,
    }
    results = _run_producers(producers, base, log_dir, timeout=duration_s + 120)
    sent = sum(r["sent"] for r in results)
    start_at = results[0]["start_at"]
    if mode != "baseline":
        stored = _wait_drained(database_url, sent, timeout=120)
    else:  # the baseline's backlog is not waited for: only its window counts
        stored = asyncio.run(_count(database_url))
    window = (1.0, duration_s)
    rows = asyncio.run(_phase_rows(database_url, job, start_at, window))
    rows["window"] = [start_at + window[0], start_at + window[1]]
    emit_us = [r["emit_us"] for r in results if r["emit_us"] is not None]
    return {
        "mode": mode,
        "sent": sent,
        "stored": stored,
        "dropped": sum(r["stats"].get("dropped", 0) for r in results),
        "rate_committed": rows["in_window"] / (window[1] - window[0]),
        "offered_rate": rate or None,
        "lag_p50_s": rows["p50"],
        "lag_p99_s": rows["p99"],
        "lag_max_s": rows["max_lag"],
        "emit_us": statistics.mean(emit_us) if emit_us else None,
        "producers": results,
        "rows": rows,
    }


def _emit_cost_in_process(n: int) -> dict[str, float]:
    """``emit`` alone (no shipper: events stay buffered, ``n`` below the buffer bound)."""
    from roadmap_core import logship
    from roadmap_core.domain import LogCategory
    from roadmap_core.logdetails import PlanFailedDetails, parse_produced

    logship.reset(1.0)
    job = uuid.uuid4()
    out = {}
    # "plain": a kind without fields of its own, the least an event carries.
    for label, details in (
        ("plain", PlanFailedDetails()),
        ("with details", parse_produced(_DETAILS)),
    ):
        started = time.perf_counter()
        for i in range(n):
            logship.emit(
                "llm call finished",
                job_id=job,
                category=LogCategory.llm,
                step="content_generation",
                details=details,
                duration_ms=float(i),
            )
        out[label] = (time.perf_counter() - started) / n * 1e6
        logship.reset(0.0)
    return out


async def _write_methods(database_url: str, batch: int, rounds: int) -> dict[str, float]:
    """Milliseconds per batch of ``batch`` events, median of ``rounds``, per write method."""
    from sqlalchemy.dialects.postgresql import insert

    from roadmap_core.contracts import LogEvent
    from roadmap_core.ids import new_id
    from roadmap_db.engine import ProcessDatabase
    from roadmap_db.models import ExecutionLog
    from roadmap_db.repositories.logs import insert_log_events, log_columns
    from roadmap_db.testing import settings_for

    def make() -> list[LogEvent]:
        job, now = uuid.uuid4(), datetime.now(UTC)
        return [
            LogEvent(
                event_id=new_id(), job_id=job, step="content_generation",
                message="llm call finished", details=_DETAILS, duration_ms=1.5, ts=now,
            )
            for _ in range(batch)
        ]  # fmt: skip

    def rows(events: list[LogEvent]) -> list[dict[str, Any]]:
        return [
            {
                "event_id": e.event_id, "job_id": e.job_id, "concept_id": e.concept_id,
                "level": e.level.value, "category": e.category.value, "step": e.step,
                "message": e.message, "details": e.details, "duration_ms": e.duration_ms,
                "ts": e.ts,
            }
            for e in events
        ]  # fmt: skip

    upsert = insert(ExecutionLog).on_conflict_do_nothing(index_elements=[ExecutionLog.event_id])
    copy_columns = [
        "event_id", "job_id", "concept_id", "level", "category", "step", "message", "details",
        "duration_ms", "ts",
    ]  # fmt: skip
    db = ProcessDatabase(settings_for(database_url), "bench-logs-write", pool_size=1)

    async def values(events: list[LogEvent]) -> None:
        async with db.transaction() as s:
            await s.execute(upsert.values(rows(events)))

    async def executemany(events: list[LogEvent]) -> None:
        async with db.transaction() as s:
            await s.execute(upsert, rows(events))

    async def unnest(events: list[LogEvent]) -> None:
        async with db.transaction() as s:
            await insert_log_events(s, events)

    async def copy(events: list[LogEvent]) -> None:
        async with db.transaction() as s:
            conn = await s.connection()
            await conn.exec_driver_sql(
                "CREATE TEMP TABLE IF NOT EXISTS log_stage (event_id uuid, job_id uuid,"
                " concept_id uuid, level text, category text, step text, message text,"
                " details jsonb, duration_ms float8, ts timestamptz) ON COMMIT DELETE ROWS"
            )
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.copy_records_to_table(
                "log_stage", records=list(zip(*log_columns(events), strict=True)),
                columns=copy_columns,
            )  # fmt: skip
            await conn.exec_driver_sql(
                "INSERT INTO execution_logs (event_id, job_id, concept_id, level, category, step,"
                " message, details, duration_ms, ts) SELECT * FROM log_stage"
                " ON CONFLICT (event_id) DO NOTHING"
            )

    methods: dict[str, Callable[[list[LogEvent]], Any]] = {
        "multi-row VALUES (SQLAlchemy)": values,
        "executemany (SQLAlchemy insertmanyvalues)": executemany,
        "unnest arrays, one statement (used)": unnest,
        "COPY to temp staging + INSERT SELECT": copy,
    }
    out: dict[str, float] = {}
    try:
        for name, method in methods.items():
            times = []
            for _ in range(rounds + 2):
                events = make()
                started = time.perf_counter()
                await method(events)
                times.append(time.perf_counter() - started)
            out[name] = statistics.median(times[2:]) * 1000
    finally:
        await db.dispose()
    return out


@contextlib.contextmanager
def _own_servers(database_url: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    """The given URLs, or a fresh migrated database and a Redis db of our own."""
    if database_url and redis_url:
        yield database_url, redis_url
        return
    from roadmap_db.testing import migrate_to_head
    from roadmap_devservers import provide
    from roadmap_devservers.pgdb import temporary_database
    from roadmap_devservers.redisdb import claimed_redis_db, owned_redis_db

    with contextlib.ExitStack() as stack:
        if not database_url:
            server = stack.enter_context(provide.provide_postgres())
            database_url = stack.enter_context(temporary_database(server, prefix="bench_logs_"))
            asyncio.run(migrate_to_head(database_url))
        if not redis_url:
            server = stack.enter_context(provide.provide_redis())
            db = claimed_redis_db if provide.redis_is_shared() else owned_redis_db
            redis_url = stack.enter_context(db(server))
        yield database_url, redis_url


def run(
    database_url: str | None = None,
    redis_url: str | None = None,
    *,
    smoke: bool = False,
    workdir: Path | None = None,
    producers: int = 3,
    duration_s: float | None = None,
    paced_rate: float = 20_000,
    worker_concurrency: int = 2,
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    duration = duration_s or (3.0 if smoke else 10.0)
    log_dir = Path(workdir or tempfile.mkdtemp(prefix="bench-logs-")) / "logs_ingest"
    log_dir.mkdir(parents=True, exist_ok=True)
    with _own_servers(database_url, redis_url) as (db_url, r_url):
        emit_cost = _emit_cost_in_process(20_000 if smoke else 80_000)
        write_ms = asyncio.run(_write_methods(db_url, 500, 3 if smoke else 10))
        asyncio.run(_truncate(db_url))

        phases: dict[str, dict[str, Any]] = {}
        worker = _Worker(
            [sys.executable, "-m", "celery", "-A", "roadmap_worker_logs.app:celery_app", "worker",
             "-Q", "logs", "-c", str(worker_concurrency), "--loglevel", "WARNING",
             "--without-mingle", "--without-gossip", "-n", f"bench-logs-{uuid.uuid4().hex[:6]}@%h"],
            _env(db_url, r_url), log_dir / "worker-logs.log",
        )  # fmt: skip
        try:
            worker.wait_ready(lambda: _live_heartbeats(r_url) >= worker_concurrency)
            common: dict[str, Any] = {
                "database_url": db_url,
                "redis_url": r_url,
                "producers": producers,
            }
            phases["paced"] = _phase(
                "paced", duration_s=duration, log_dir=log_dir, rate=paced_rate, **common
            )
            asyncio.run(_truncate(db_url))
            phases["saturated"] = _phase(
                "saturated", duration_s=duration, log_dir=log_dir, **common
            )
        finally:
            worker.stop()
        asyncio.run(_truncate(db_url))

        baseline = _Worker(
            [sys.executable, "-m", "celery", "-A", "bench.logs_ingest:baseline_app", "worker",
             "-Q", BASELINE_QUEUE, "-c", str(worker_concurrency), "--loglevel", "WARNING",
             "--without-mingle", "--without-gossip", "-n", f"bench-base-{uuid.uuid4().hex[:6]}@%h"],
            _env(db_url, r_url, ROADMAP_BENCH_BASELINE="1"), log_dir / "worker-baseline.log",
        )  # fmt: skip
        try:
            time.sleep(3.0)  # no heartbeat in the baseline worker: give it time to start
            baseline.wait_ready(lambda: baseline.proc.poll() is None)
            phases["baseline"] = _phase("baseline", duration_s=duration, log_dir=log_dir, **common)
            phases["baseline"]["backlog_left"] = _queue_len(r_url, BASELINE_QUEUE)
        finally:
            baseline.stop()
    result = _report(phases, emit_cost, write_ms, duration, producers, paced_rate, smoke)
    load_after = os.getloadavg()[0]
    result["notes"].append(
        f"1-min load average {load_before:.1f} before, {load_after:.1f} after, on"
        f" {os.cpu_count()} CPUs: other work on the machine slows every figure"
    )
    result["raw"]["loadavg"] = [load_before, load_after]
    return result


def _report(
    phases: dict[str, dict[str, Any]],
    emit_cost: dict[str, float],
    write_ms: dict[str, float],
    duration: float,
    producers: int,
    paced_rate: float,
    smoke: bool,
) -> dict[str, Any]:
    paced, saturated, baseline = phases["paced"], phases["saturated"], phases["baseline"]
    rate = saturated["rate_committed"]
    ratio = rate / baseline["rate_committed"] if baseline["rate_committed"] else float("inf")
    p99 = paced["lag_p99_s"]
    emit_us = paced["emit_us"]

    def target(
        name: str, goal: str, measured: str, ok: bool, figure: str | None = None
    ) -> dict[str, Any]:
        out = {"name": name, "target": goal, "measured": measured, "pass": None if smoke else ok}
        return {**out, "figure": figure} if figure else out

    return {
        "title": "Logs ingest rate and lag",
        "settings": {
            "producers": f"{producers} processes",
            "window": f"{duration:.0f} s per phase (first second excluded from rates)",
            "paced offered load": f"{paced_rate:,.0f} events/s",
            "logs worker": "prefork -c 2, LOG_BATCH_SIZE 500, LOG_FLUSH_INTERVAL_MS 200",
            "baseline": "1 Celery message per event, 1 INSERT + commit per message, prefork -c 2",
        },
        "figures": [
            {"name": "sustained ingest (saturated)", "unit": "events/s", "values": [rate]},
            {
                "name": "committed at paced load",
                "unit": "events/s",
                "values": [paced["rate_committed"]],
            },
            {"name": "baseline ingest", "unit": "events/s", "values": [baseline["rate_committed"]]},
            {"name": "lag p50 at paced load", "unit": "ms", "values": [paced["lag_p50_s"] * 1000]},
            {"name": "lag p99 at paced load", "unit": "ms", "values": [p99 * 1000]},
            {"name": "lag max at paced load", "unit": "ms", "values": [paced["lag_max_s"] * 1000]},
            {"name": "lag p99 saturated", "unit": "ms", "values": [saturated["lag_p99_s"] * 1000]},
            {"name": "emit() in producers", "unit": "µs", "values": [emit_us], "fmt": "{:.2f}"},
            {
                "name": "emit() tight loop, with details",
                "unit": "µs",
                "values": [emit_cost["with details"]],
                "fmt": "{:.2f}",
            },
            {
                "name": "emit() tight loop, plain",
                "unit": "µs",
                "values": [emit_cost["plain"]],
                "fmt": "{:.2f}",
            },
            *[
                {"name": f"write 500: {k}", "unit": "ms", "values": [v], "fmt": "{:.2f}"}
                for k, v in write_ms.items()
            ],
        ],
        "targets": [
            target(
                "sustained ingest",
                f"≥ {TARGET_RATE:,} events/s",
                f"{rate:,.0f} events/s",
                rate >= TARGET_RATE,
                "sustained ingest (saturated)",
            ),
            target(
                "p99 emit→commit lag",
                f"≤ {TARGET_P99_S:.0f} s",
                f"{p99 * 1000:.0f} ms",
                p99 <= TARGET_P99_S,
                "lag p99 at paced load",
            ),
            target("vs baseline", f"≥ {TARGET_RATIO:.0f}x", f"{ratio:.1f}x", ratio >= TARGET_RATIO),
            target(
                "emit cost",
                f"≤ {TARGET_EMIT_US:.0f} µs",
                f"{emit_us:.2f} µs",
                emit_us <= TARGET_EMIT_US,
                "emit() in producers",
            ),
        ],
        "notes": [
            "lag = created_at (now() of the inserting transaction, just before commit) - ts"
            " (set in emit); both clocks are this machine's",
            f"paced: {paced['sent']:,} emitted, {paced['stored']:,} stored,"
            f" {paced['dropped']} dropped; saturated: {saturated['sent']:,} emitted,"
            f" {saturated['stored']:,} stored, {saturated['dropped']} dropped",
            f"baseline: {baseline['sent']:,} published in the window,"
            f" {baseline.get('backlog_left', 0):,} still queued when it ended",
        ],
        "raw": {"phases": phases, "emit_cost_us": emit_cost, "write_ms_per_500": write_ms},
    }


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--producer", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="3 s phases, no target judged")
    parser.add_argument("--database-url", help="a migrated database (default: a fresh one)")
    parser.add_argument("--redis-url", help="a Redis db of our own (default: a fresh one)")
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--duration", type=float, default=None, help="seconds per phase")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args()
    if args.producer:
        print(json.dumps(_producer(json.loads(args.producer))), flush=True)
        return 0
    result = run(
        args.database_url,
        args.redis_url,
        smoke=args.smoke,
        producers=args.producers,
        duration_s=args.duration,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    for fig in result["figures"]:
        print(f"{fig['name']:>48}: {fig['values'][0]:,.2f} {fig['unit']}")
    for t in result["targets"]:
        print(f"target {t['name']}: {t['measured']} (target {t['target']}) pass={t['pass']}")
    for note in result["notes"]:
        print(f"note: {note}")
    return 0 if all(t["pass"] is not False for t in result["targets"]) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(_main())
