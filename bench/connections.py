"""Benchmark 6 — connections stay within budget under 3x overload.

Each service's Postgres connection budget follows from its settings (documented in each
service's settings module) and is computed per `application_name` by the same settings
code (`bench.lib.budgets`):

    roadmap-api             web workers x (DB_POOL_SIZE + DB_MAX_OVERFLOW)
    roadmap-worker-content  WORKER_CONCURRENCY x (child pool + WORKER_DB_MAX_OVERFLOW) + 2
    roadmap-worker-logs     LOGS_WORKER_CONCURRENCY x (LOGS_DB_POOL_SIZE + LOGS_DB_MAX_OVERFLOW)

Overload: wrk keeps 3 x (the API's connection budget) requests in flight on
`POST /api/v1/roadmaps` (closed loop, as fast as the API answers) while an open-loop
client reads a roadmap; every POST queues a roadmap, so the content worker's queue grows
far past what it can run and the logs worker receives every step's events. A sampler
polls `pg_stat_activity` every 100 ms. Targets: every service's peak ≤ its budget, the sum
within the server's `max_connections`, and zero pool-timeout errors (no QueuePool timeout
or "too many clients" in any service's log, no non-2xx answer).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from bench.lib.api import create_requests, creates_as, plain_client, reads, submit
from bench.lib.budgets import connection_budgets
from bench.lib.context import Context
from bench.lib.loadgen import LoadResult, WrkResult, max_rate_python, open_loop, run_wrk
from bench.lib.pgstat import ConnectionSampler
from bench.lib.results import BenchResult
from bench.lib.stack import BenchStack, StackConfig
from bench.lib.stats import Spread

TITLE = "Connections under 3x overload"
OVERLOAD = 3
USERS = 200  # POSTs from many users, as in production (one user's submits share a lock)
POOL_ERRORS = re.compile(
    r"QueuePool limit|TimeoutError.*pool|too many clients|TooManyConnections|"
    r"remaining connection slots are reserved|database unavailable: TimeoutError",
    re.IGNORECASE,
)


def _service_of(app: str, known: Mapping[str, int]) -> str:
    for name in sorted(known, key=len, reverse=True):
        if app == name or app.startswith(name + "-") or app.startswith(name + ":"):
            return name
    return app


def run(ctx: Context) -> dict[str, Any]:
    duration_s = ctx.scale(10, 2)
    config = StackConfig(fake_latency_ms=200)
    result = BenchResult(TITLE)
    peaks: list[Counter[str]] = []
    wrk_runs: list[dict[str, float]] = []
    reads: list[LoadResult] = []
    with ctx.stack("connections", config) as stack:
        budget = connection_budgets(stack.env, config.api_workers)
        connections = OVERLOAD * budget["roadmap-api"]
        max_connections = int(ctx.servers.info.get("postgres.max_connections", "0") or 0)
        result.settings = {
            "budget per service": ", ".join(f"{k} {v}" for k, v in budget.items()),
            "pool settings": ", ".join(
                f"{k}={stack.env[k]}"
                for k in sorted(stack.env)
                if k.startswith(("DB_", "WORKER_", "LOGS_DB", "LOGS_WORKER"))
            ),
            "overload": f"wrk -c{connections} (= {OVERLOAD} x the API budget) on POST "
            f"/api/v1/roadmaps (taking turns over {USERS} users) for {duration_s:g} s, "
            "plus reads of one roadmap at 50 req/s",
            "server max_connections": str(max_connections or "unknown"),
            "repeats": str(ctx.repeat),
        }
        token = stack.user_token()
        tokens = stack.user_tokens(USERS)
        read_id = asyncio.run(_first_roadmap(stack, token))
        with ConnectionSampler(stack.fresh.database_url) as sampler:
            for _ in range(ctx.repeat):
                sampler.peak.clear()
                wrk_out, read = _overload(
                    ctx, stack, token, tokens, read_id, connections, duration_s
                )
                wrk_runs.append(wrk_out)
                reads.append(read)
                peaks.append(Counter(sampler.peak))
                stack.check_alive()
        if sampler.error is not None:
            raise RuntimeError(f"pg_stat_activity sampler failed: {sampler.error!r}")
        pool_errors = _pool_errors(stack)

    by_service: dict[str, list[float]] = {}
    totals: list[float] = []
    for peak in peaks:
        grouped: Counter[str] = Counter()
        for app, count in peak.items():
            grouped[_service_of(app, budget)] += count
        for service in sorted(set(budget) | set(grouped)):
            by_service.setdefault(service, []).append(float(grouped.get(service, 0)))
        # Per-sample peaks of different services need not coincide: their sum bounds the total.
        totals.append(float(sum(grouped.values())))
    for service, values in by_service.items():
        limit = budget.get(service)
        fig = result.figure(f"peak connections: {service}", "", values, "{:.0f}")
        if limit is not None:
            result.target(
                f"{service} never above its budget",
                f"≤ {limit}",
                fig.text(),
                max(values) <= limit,
            )
    total = result.figure("peak connections: sum of services", "", totals, "{:.0f}")
    if max_connections:
        result.target(
            "all services within the server's max_connections",
            f"≤ {max_connections}",
            total.text(),
            max(totals) <= max_connections,
        )
    result.figure("POST rate under overload", "req/s", [w["rps"] for w in wrk_runs], "{:.0f}")
    non_2xx = [w["non_2xx"] + w["socket_errors"] for w in wrk_runs]
    read_errors = [float(r.errors) for r in reads]
    result.figure("POST non-2xx + socket errors", "", non_2xx, "{:.0f}")
    result.figure("read p99 under overload", "ms", [r.summary()["p99_ms"] for r in reads], "{:.1f}")
    result.figure("read errors", "", read_errors, "{:.0f}")
    failures = int(sum(non_2xx) + sum(read_errors))
    result.target(
        "zero pool-timeout errors",
        "0",
        f"{pool_errors} in service logs, {failures} failed requests",
        pool_errors == 0 and failures == 0,
    )
    result.raw = {
        "budget": budget,
        "peaks": [dict(p) for p in peaks],
        "wrk": wrk_runs,
        "reads": [r.summary() | {"statuses": dict(r.statuses)} for r in reads],
        "pool_errors_in_logs": pool_errors,
        "total_peak_spread": Spread.of(totals).as_dict(),
    }
    return result.as_dict()


async def _first_roadmap(stack: BenchStack, token: str) -> str:
    async with plain_client() as client:
        (job_id,) = await submit(client, stack.api_url, token, 1)
    return job_id


def _overload(
    ctx: Context,
    stack: BenchStack,
    token: str,
    tokens: list[str],
    read_id: str,
    connections: int,
    duration_s: float,
) -> tuple[dict[str, float], LoadResult]:
    out: dict[str, dict[str, float]] = {}
    failure: list[BaseException] = []

    def post_flood() -> None:
        try:
            if ctx.wrk:
                res: WrkResult = run_wrk(
                    ctx.wrk,
                    create_requests(stack.api_url, tokens),
                    connections=connections,
                    duration_s=duration_s,
                )
                out["wrk"] = res.summary()
            else:
                summary = max_rate_python(
                    creates_as(stack.api_url, tokens),
                    concurrency=connections,
                    duration_s=duration_s,
                )
                summary["non_2xx"] = summary["sent"] - summary["ok"]
                summary["socket_errors"] = 0.0
                out["wrk"] = summary
        except BaseException as exc:
            failure.append(exc)

    flood = threading.Thread(target=post_flood, name="post-flood")
    flood.start()
    try:
        read = asyncio.run(
            open_loop(
                reads(stack.api_url, token, read_id),
                rate=50,
                duration_s=duration_s,
            )
        )
    finally:
        flood.join()
    if failure:
        raise failure[0]
    return out["wrk"], read


def _pool_errors(stack: BenchStack) -> int:
    count = 0
    for path in stack.log_dir.glob("*.log"):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        count += sum(1 for line in text.splitlines() if POOL_ERRORS.search(line))
    return count
