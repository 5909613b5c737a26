"""Benchmark 8 — scale-out: what adding content-worker and API processes buys.

The real stack on one PostgreSQL and one Redis, with 1, 2 and 4 **separate** content-worker
processes (each its own Celery worker with its prefork pool, as Railway replicas would
be) and 1 and 2 API processes (uvicorn ``--workers``), the fake LLM answering every call in
``LATENCY_MS`` (1 s, a realistic model latency). Each run submits ``ROADMAPS_PER_WORKER``
24-concept roadmaps per worker process through the API, all at once, and waits until every
one has finished. Reported per configuration:

- **concepts per minute**: 24 x roadmaps / (first submit -> last roadmap finished);
- **efficiency against linear scaling**: concepts/min with N workers / (N x with 1);
- **LLM calls in flight**: the most the provider served at once, and the mean over the run
  (calls x latency / wall time), against the slots the workers have (workers x
  ``WORKER_LLM_SLOTS``, or x ``WORKER_CONCURRENCY x LLM_CONCURRENCY`` if that is fewer);
- **CPU**: cores used by each service over the run (its processes' CPU time / wall time)
  and the machine's busy share;
- **PostgreSQL connections**: the peak per service and in all (``pg_stat_activity``).

The global LLM limits are out of reach in those runs (we measure the system), and then one
run is made **at the default limit** (``LLM_RPM=500``, ``LLM_RATE_WINDOW_S=60``): how much of
what the limit allows reaches the provider (calls per minute at the provider over whole
admission spans / ``LLM_RPM``; goal ≥ 0.95) and the busiest 60 s window at the provider
(goal: never more than 500).

Smoke mode: 1 and 2 workers, one API process, 300 ms calls, one roadmap per worker, and a
2 s window for the rate-limited run: seconds, judging nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import psutil

from bench.lib.api import API, ROADMAP_BODY, auth, unfinished_in_db
from bench.lib.context import Context
from bench.lib.pgstat import ConnectionSampler
from bench.lib.results import BenchResult
from bench.lib.stack import BenchStack, StackConfig

TITLE = "Scale-out: content workers and API processes"
LATENCY_MS = 1000
CONCEPTS = 24
ROADMAPS_PER_WORKER = 4
EFFICIENCY_GOAL = 0.9
RATE_USE_GOAL = 0.95
DEFAULT_RPM = 500
DEFAULT_WINDOW_S = 60.0
RUN_TIMEOUT_S = 300.0
RATE_LIMITED_WORKERS = 2
# A stack is "ready" when every worker's main process beats, while its pool's children may
# still be starting (2 cores busy for ~1 s at 4 workers), and the previous configuration's
# teardown may still load PostgreSQL: the clock starts once the machine was busy less than
# QUIET_SHARE over QUIET_WINDOW_S, as replicas are started before traffic reaches them.
# Bounded: a machine that never quiets is measured anyway (the wait is in raw).
QUIET_SHARE = 0.15
QUIET_WINDOW_S = 0.5
QUIET_MAX_WAIT_S = 30.0


@dataclass
class Run:
    workers: int
    api: int
    roadmaps: int
    wall_s: float = math.nan
    completed: int = 0
    llm_calls: int = 0
    max_in_flight: int = 0
    slots: int = 0
    cpu_cores: dict[str, float] = field(default_factory=dict)
    machine_busy: float = math.nan
    pg_peak: dict[str, int] = field(default_factory=dict)
    pg_peak_total: int = 0
    load_before: str = ""
    load_after: str = ""
    settle_s: float = math.nan  # from "ready" until the machine was quiet
    batch_size: int | None = None  # CONCEPT_BATCH_SIZE when not the worker's default
    error: str = ""  # why this configuration has no figures (the others still count)

    @property
    def concepts_per_min(self) -> float:
        return CONCEPTS * self.completed / self.wall_s * 60 if self.wall_s > 0 else math.nan

    def mean_in_flight(self, latency_s: float) -> float:
        return self.llm_calls * latency_s / self.wall_s if self.wall_s > 0 else math.nan

    def slot_use(self, latency_s: float) -> float:
        return self.mean_in_flight(latency_s) / self.slots if self.slots else math.nan


def run(ctx: Context) -> dict[str, Any]:
    latency_ms = 300 if ctx.smoke else LATENCY_MS
    per_worker = 1 if ctx.smoke else ROADMAPS_PER_WORKER
    worker_counts = (1, 2) if ctx.smoke else (1, 2, 4)
    api_counts = (1,) if ctx.smoke else (1, 2)
    result = BenchResult(TITLE)
    runs: list[Run] = []
    before = None
    for api in api_counts:
        for workers in worker_counts:
            runs.append(_measure(ctx, workers, api, per_worker * workers, latency_ms))
            if before is None and not ctx.smoke:
                # The batch size before this benchmark changed it (12 calls per task for 8
                # slots a child), right after the same run with the default: the machine's
                # load changes by the minute here, so the pair is measured back to back.
                before = _measure(ctx, 1, 1, per_worker, latency_ms, batch_size=4)
    limited = _rate_limited(ctx, latency_ms)
    _report(result, runs, limited, latency_ms, ctx)
    if before is not None:
        _report_before(result, before, runs[0], latency_ms)
    result.notes += [
        f"{r.workers} worker(s), {r.api} API process(es){_batch_label(r)}: no figures, {r.error}"
        for r in [*runs, *([before] if before else [])]
        if r.error
    ]
    result.notes += [
        f"load average (1/5/15 min) before / after {r.workers} worker(s), {r.api} API "
        f"process(es){_batch_label(r)}: {r.load_before} / {r.load_after}; machine busy "
        f"{r.machine_busy:.2f}"
        for r in [*runs, *([before] if before else [])]
    ]
    result.notes.append(
        f"load average before the rate-limited run: {limited['load_before']} (on "
        f"{psutil.cpu_count()} cores, shared by every process of the run)"
    )
    extra = [vars(before)] if before else []
    result.raw = {"runs": [vars(r) for r in runs], "before": extra, "rate_limited": limited}
    return result.as_dict()


def _batch_label(r: Run) -> str:
    return f", CONCEPT_BATCH_SIZE={r.batch_size}" if r.batch_size else ""


# Connection budgets that let 4 content replicas and 2 API processes share one PostgreSQL
# (max_connections 100, shared on this machine with other work): with the defaults (a child
# pool of LLM_CONCURRENCY + 1, 20 per API process, prewarmed) the first full run at 4
# workers and 2 API processes ran out of connections (TooManyConnectionsError) and stalled.
# A call slot holds a connection only for two short statements per 1 s call, so 4 per child
# serve its 8 slots at this latency (the slot use of each run is reported; docs/scaling.md).
POOLS = {
    "WORKER_DB_POOL_SIZE": "4",
    "WORKER_DB_MAX_OVERFLOW": "2",
    "DB_POOL_SIZE": "8",
    "DB_POOL_PREWARM": "8",
}


def _config(workers: int, api: int, latency_ms: int, env: dict[str, str]) -> StackConfig:
    env = {**POOLS, **env}
    return StackConfig(
        fake_latency_ms=latency_ms,
        # No pid lookups: they cost the fake CPU the workers would otherwise have.
        fake_args=(
            "--concepts",
            str(CONCEPTS),
            "--seed",
            "1",
            "--config-json",
            '{"track_client_pid": false}',
        ),
        api_workers=api,
        content_workers=workers,
        env=env,
        ready_timeout_s=120.0,
    )


def _measure(
    ctx: Context,
    workers: int,
    api: int,
    roadmaps: int,
    latency_ms: int,
    batch_size: int | None = None,
) -> Run:
    out = Run(workers, api, roadmaps, load_before=_load(), batch_size=batch_size)
    try:
        _measure_into(out, ctx, latency_ms)
    except (TimeoutError, RuntimeError, httpx.HTTPError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        out.wall_s = math.nan
    return out


def _measure_into(out: Run, ctx: Context, latency_ms: int) -> None:
    workers, api, roadmaps, batch_size = out.workers, out.api, out.roadmaps, out.batch_size
    env = {"CONCEPT_BATCH_SIZE": str(batch_size)} if batch_size else {}
    name = f"scale-w{workers}-a{api}" + (f"-b{batch_size}" if batch_size else "")
    with ctx.stack(name, _config(workers, api, latency_ms, env)) as stack:
        given = stack.env
        per_worker = int(given["WORKER_CONCURRENCY"]) * int(given["LLM_CONCURRENCY"])
        out.slots = workers * min(per_worker, int(given["WORKER_LLM_SLOTS"]))
        tokens = stack.user_tokens(roadmaps)
        cpu = _CpuMeter(stack)
        out.settle_s = _wait_quiet()
        with ConnectionSampler(stack.fresh.database_url) as sampler:
            cpu.start()
            started = time.monotonic()
            ids = asyncio.run(_submit(stack.api_url, tokens))
            asyncio.run(_wait_finished(stack.fresh.database_url, ids, RUN_TIMEOUT_S))
            out.wall_s = time.monotonic() - started
            out.cpu_cores, out.machine_busy = cpu.stop(out.wall_s)
            out.load_after = _load()
        stack.check_alive()
        out.completed = asyncio.run(_completed(stack.fresh.database_url, ids))
        calls = _fake_requests(stack)
        out.llm_calls = len(calls)
        out.max_in_flight = max((int(c["in_flight"]) for c in calls), default=0)
        out.pg_peak = dict(sampler.peak)
        out.pg_peak_total = sampler.peak_total


def _rate_limited(ctx: Context, latency_ms: int) -> dict[str, Any]:
    """Two workers against the default limit: what reaches the provider, per window.

    One worker at 1 s per call asks for at most 16 x 60 = 960 calls a minute, and on this
    shared machine it made ~500 (a first run measured 0.90 of the limit with one worker:
    the worker, not the limiter, was short). Two make sure the limit is what binds."""
    window_s = 2.0 if ctx.smoke else DEFAULT_WINDOW_S
    rpm = 300 if ctx.smoke else DEFAULT_RPM
    env = {"LLM_RPM": str(rpm), "LLM_RATE_WINDOW_S": str(window_s)}
    spans = 2
    config = _config(RATE_LIMITED_WORKERS, 1, latency_ms, env)
    with ctx.stack("scale-rate-limited", config) as stack:
        margin_s = float(stack.env.get("LLM_RATE_MARGIN_S", "0.5"))
        span_s = window_s + margin_s
        # More work than the limit lets through in the measured spans.
        roadmaps = 2 if ctx.smoke else 20
        tokens = stack.user_tokens(roadmaps)
        load = _load()
        asyncio.run(_submit(stack.api_url, tokens))
        first = _wait_first_call(stack, 60.0)
        time.sleep(max(0.0, first + spans * span_s + 2.0 - time.time()))
        calls = _fake_requests(stack)
    arrivals = sorted(float(c["ts"]) for c in calls)
    measured = [t for t in arrivals if first <= t < first + spans * span_s]
    per_min = len(measured) / (spans * span_s) * 60
    busiest = max((sum(1 for u in arrivals if t <= u < t + window_s) for t in arrivals), default=0)
    per_window = int(rpm * window_s / 60)
    return {
        "rpm": rpm,
        "window_s": window_s,
        "margin_s": margin_s,
        "spans": spans,
        "calls_in_spans": len(measured),
        "calls_per_min": per_min,
        "use_of_limit": per_min / rpm,
        "busiest_window_calls": busiest,
        "window_limit": per_window,
        "workers": RATE_LIMITED_WORKERS,
        "load_before": load,
    }


async def _submit(api_url: str, tokens: list[str]) -> list[str]:
    async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:

        async def one(token: str) -> str:
            answer = await client.post(f"{api_url}{API}/roadmaps", json=ROADMAP_BODY,
                                       headers=auth(token))  # fmt: skip
            if answer.status_code != 202:
                raise RuntimeError(f"POST /roadmaps answered {answer.status_code}: {answer.text}")
            return str(answer.json()["id"])

        return list(await asyncio.gather(*(one(t) for t in tokens)))


async def _wait_finished(database_url: str, ids: list[str], timeout_s: float) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while await unfinished_in_db(conn, ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"roadmaps not finished within {timeout_s:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def _completed(database_url: str, ids: list[str]) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM roadmap_jobs WHERE id = ANY($1::uuid[]) AND status = 'completed'",
            ids,
        )
        return int(count or 0)
    finally:
        await conn.close()


def _fake_requests(stack: BenchStack) -> list[dict[str, Any]]:
    base = stack.llm_base_url.removesuffix("/v1")
    answer = httpx.get(f"{base}/_fake/requests", timeout=30.0, trust_env=False)
    answer.raise_for_status()
    requests: list[dict[str, Any]] = answer.json()["requests"]
    return requests


def _wait_first_call(stack: BenchStack, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        calls = _fake_requests(stack)
        if calls:
            return min(float(c["ts"]) for c in calls)
        time.sleep(0.2)
    raise TimeoutError("no LLM call reached the fake")


def _wait_quiet() -> float:
    """Seconds until the machine was busy less than QUIET_SHARE over QUIET_WINDOW_S."""
    started = time.monotonic()
    while time.monotonic() - started < QUIET_MAX_WAIT_S:
        if psutil.cpu_percent(interval=QUIET_WINDOW_S) / 100 < QUIET_SHARE:
            break
    return time.monotonic() - started


def _load() -> str:
    one, five, fifteen = psutil.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


class _CpuMeter:
    """CPU seconds of each service's processes over a run (children that come and go too)."""

    def __init__(self, stack: BenchStack) -> None:
        self._stack = stack
        self._seen: dict[int, tuple[str, psutil.Process, float]] = {}

    def _sample(self) -> dict[int, tuple[str, psutil.Process, float]]:
        found = {}
        for name in self._stack.services():
            service = "worker-content" if name.startswith("worker-content") else name
            for pid in self._stack.pids(name):
                try:
                    proc = psutil.Process(pid)
                    times = proc.cpu_times()
                    found[pid] = (service, proc, times.user + times.system)
                except psutil.Error:
                    continue
        return found

    def start(self) -> None:
        self._seen = self._sample()
        psutil.cpu_percent(interval=None)

    def stop(self, wall_s: float) -> tuple[dict[str, float], float]:
        now = self._sample()
        used: dict[str, float] = {}
        for pid, (service, _, cpu) in now.items():
            before = self._seen.get(pid, (service, None, 0.0))[2]
            used[service] = used.get(service, 0.0) + max(0.0, cpu - before)
        busy = psutil.cpu_percent(interval=None) / 100
        return {s: round(c / wall_s, 3) for s, c in sorted(used.items())}, busy


def _report(
    result: BenchResult, runs: list[Run], limited: dict[str, Any], latency_ms: int, ctx: Context
) -> None:
    latency_s = latency_ms / 1000
    base = {r.api: r.concepts_per_min for r in runs if r.workers == 1}
    result.settings = {
        "fake LLM latency": f"{latency_ms} ms per call",
        "roadmaps": f"{ROADMAPS_PER_WORKER if not ctx.smoke else 1} per content worker, "
        f"{CONCEPTS} concepts each, submitted at once through the API",
        "content workers": "separate Celery workers (prefork, WORKER_CONCURRENCY children "
        "each), as replicas",
        "API processes": "uvicorn --workers",
        "LLM limits": "out of reach, then the defaults for the rate-limited run",
        "connection pools": ", ".join(f"{k}={v}" for k, v in POOLS.items())
        + " (to fit max_connections 100 at 4 workers + 2 API processes; see docs/scaling.md)",
        "repeats": "1 per configuration (each is a long run); load average before each in raw",
        "clock": "starts at the first submit, once the machine was busy less than "
        f"{QUIET_SHARE:.0%} over {QUIET_WINDOW_S:g} s (pool children still start after the "
        "workers report ready); the wait is in raw (settle_s)",
    }
    for r in runs:
        tag = f"w{r.workers}_a{r.api}"
        label = f"{r.workers} worker(s), {r.api} API process(es)"
        efficiency = r.concepts_per_min / (r.workers * base[r.api]) if base.get(r.api) else math.nan
        figures: list[tuple[str, str, str, float, str | None, bool | None]] = [
            (f"scale_concepts_per_min_{tag}", f"concepts/min, {label}", "concepts/min",
             r.concepts_per_min, None, None),
            (f"scale_efficiency_{tag}", f"efficiency vs linear, {label}", "x", efficiency,
             f">= {EFFICIENCY_GOAL}" if r.workers > 1 else None,
             (efficiency >= EFFICIENCY_GOAL if r.workers > 1 and not ctx.smoke else None)),
            (f"scale_llm_in_flight_max_{tag}", f"LLM calls in flight, most, {label}", "calls",
             float(r.max_in_flight), None, None),
            (f"scale_llm_in_flight_mean_{tag}", f"LLM calls in flight, mean, {label}", "calls",
             r.mean_in_flight(latency_s), None, None),
            (f"scale_llm_slots_{tag}", f"LLM call slots of the workers, {label}", "calls",
             float(r.slots), None, None),
            (f"scale_llm_slot_use_{tag}", f"LLM slots busy on average, {label}", "share",
             r.slot_use(latency_s), None, None),
            (f"scale_pg_connections_peak_{tag}", f"PostgreSQL connections, peak, {label}",
             "connections", float(r.pg_peak_total), None, None),
            (f"scale_machine_cpu_busy_{tag}", f"machine CPU busy, {label}", "share",
             r.machine_busy, None, None),
        ]  # fmt: skip
        for service, cores in r.cpu_cores.items():
            figures.append(
                (f"scale_cpu_cores_{service.replace('-', '_')}_{tag}",
                 f"CPU cores used by {service}, {label}", "cores", cores, None, None)
            )  # fmt: skip
        for key, name, unit, value, goal, passed in figures:
            result.figure(name, unit, [value], "{:.3g}", key=key, goal=goal, passed=passed)
        if r.workers > 1:
            result.target(
                f"efficiency at {r.workers} workers, {r.api} API process(es)",
                f">= {EFFICIENCY_GOAL}",
                f"{efficiency:.3f}",
                efficiency >= EFFICIENCY_GOAL if not ctx.smoke else None,
            )
    use, busiest = limited["use_of_limit"], limited["busiest_window_calls"]
    limit_figures = [
        ("scale_rate_limited_calls_per_min", "calls/min at the provider at LLM_RPM="
         f"{limited['rpm']}", "calls/min", limited["calls_per_min"], None, None),
        ("scale_rate_limit_use", "share of LLM_RPM used at the provider", "x", use,
         f">= {RATE_USE_GOAL}", use >= RATE_USE_GOAL if not ctx.smoke else None),
        ("scale_rate_limit_busiest_window", f"calls in the busiest {limited['window_s']:g} s "
         "at the provider", "calls", float(busiest), f"<= {limited['window_limit']}",
         busiest <= limited["window_limit"] if not ctx.smoke else None),
    ]  # fmt: skip
    for key, name, unit, value, goal, passed in limit_figures:
        result.figure(name, unit, [value], "{:.4g}", key=key, goal=goal, passed=passed)
    result.target(
        f"calls reaching the provider at LLM_RPM={limited['rpm']}",
        f">= {RATE_USE_GOAL} of the limit, never more",
        f"{use:.3f} of it; busiest window {busiest}/{limited['window_limit']}",
        (use >= RATE_USE_GOAL and busiest <= limited["window_limit"]) if not ctx.smoke else None,
    )


def _report_before(result: BenchResult, before: Run, after: Run, latency_ms: int) -> None:
    """One worker with the old batch size beside the same run with the default."""
    latency_s = latency_ms / 1000
    label = f"1 worker, CONCEPT_BATCH_SIZE={before.batch_size}"
    result.figure(f"concepts/min, {label}", "concepts/min", [before.concepts_per_min], "{:.3g}",
                  key="scale_concepts_per_min_w1_a1_batch4")  # fmt: skip
    result.figure(f"LLM slots busy on average, {label}", "share", [before.slot_use(latency_s)],
                  "{:.3g}", key="scale_llm_slot_use_w1_a1_batch4")  # fmt: skip
    gain = after.concepts_per_min / before.concepts_per_min if before.concepts_per_min else math.nan
    result.figure("concepts/min with the default batch size / with 4", "x", [gain], "{:.3g}",
                  key="scale_batch_size_gain_w1_a1")  # fmt: skip
