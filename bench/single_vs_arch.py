"""Benchmark 1 — one service that generates inside the request vs this architecture.

Both get the same fake LLM (same latency), the same LLM concurrency per process and the
same number of web processes. Under the same offered loads (open loop) we measure the
POST's response time, the rate it completes at and its error rate; then each side's
maximum sustained rate: the baseline with closed-loop clients (its requests take
seconds), ours with wrk on `POST /api/v1/roadmaps` (the Python generator would be the
bottleneck). Target: ours sustains ≥ 100x the baseline's rate.

The baseline process is restarted after a load level where clients gave up on requests
(timeouts): those keep generating on the server and must not slow the next level.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench.lib.api import create_request, create_requests, creates, creates_as, plain_client
from bench.lib.context import Context
from bench.lib.loadgen import LoadResult, closed_loop, max_rate_python, open_loop, run_wrk
from bench.lib.results import BenchResult, at_least
from bench.lib.stack import BenchStack, StackConfig, free_port, http_ok
from bench.lib.stats import Spread

TITLE = "Single service vs this architecture"
LATENCY_MS = 200
WEB_WORKERS = 2
LLM_CONCURRENCY = 8  # per process: 2 web processes (baseline) = 2 prefork children (ours)
TARGET_RATIO = 100.0
USERS = 200  # ours serves many users; one user's submits queue on its quota lock


def _settings(ctx: Context) -> dict[str, Any]:
    return {
        "rates": [0.5, 5.0] if not ctx.smoke else [2.0],
        # Long enough for 3 and 20 requests: the baseline's figures barely move between
        # repeats (its time is LLM latency), and each of its requests takes seconds.
        "durations_s": {0.5: 6.0, 5.0: 4.0, 2.0: 0.5},
        "timeout_s": ctx.scale(10, 8),
        "baseline_clients": 8 if not ctx.smoke else 2,
        "baseline_max_s": ctx.scale(6, 0.5),
        "our_duration_s": ctx.scale(10, 0.5),
        "wrk_connections": 32,
        "wrk_s": ctx.scale(5, 1),
    }


def _start_baseline(stack: BenchStack) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack.spawn(
        "baseline",
        [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(WEB_WORKERS), "--no-access-log",
         "--timeout-graceful-shutdown", "1"],
    )  # fmt: skip
    stack.wait_for("baseline", lambda: http_ok(f"{url}/healthz"), "answering /healthz")
    return url


def run(ctx: Context) -> dict[str, Any]:
    cfg = _settings(ctx)
    result = BenchResult(TITLE)
    result.settings = {
        "fake LLM latency": f"{LATENCY_MS} ms per call",
        "web processes": f"{WEB_WORKERS} uvicorn workers on both sides",
        "LLM concurrency": f"{LLM_CONCURRENCY} per process (baseline: 2 web processes; "
        "ours: 2 prefork children of the content worker)",
        "offered loads (open loop)": "baseline: "
        + ", ".join(f"{r:g} req/s for {cfg['durations_s'][r]:g} s" for r in cfg["rates"])
        + f"; ours: the same rates for {cfg['our_duration_s']:g} s each; "
        f"client timeout {cfg['timeout_s']:g} s",
        "baseline max rate": f"{cfg['baseline_clients']} closed-loop clients for "
        f"{cfg['baseline_max_s']:g} s",
        "our users": f"POSTs take turns over {USERS} users' tokens",
        "our max rate": f"wrk -c{cfg['wrk_connections']} for {cfg['wrk_s']:g} s"
        if ctx.wrk
        else "Python closed-loop generator (wrk unavailable)",
        "repeats": str(ctx.repeat),
    }
    base: dict[str, list[LoadResult]] = {f"{r:g}": [] for r in cfg["rates"]}
    ours: dict[str, list[LoadResult]] = {f"{r:g}": [] for r in cfg["rates"]}
    base_max: list[float] = []
    our_max: list[float] = []
    base_latency_light: list[float] = []

    baseline_cfg = StackConfig(
        fake_latency_ms=LATENCY_MS,
        api=False,
        content_worker=False,
        logs_worker=False,
        env={"LLM_CONCURRENCY": str(LLM_CONCURRENCY)},
    )
    with ctx.stack("baseline", baseline_cfg) as stack:
        url = ""
        for _ in range(ctx.repeat):
            for rate in cfg["rates"]:
                url = url or _start_baseline(stack)
                load = asyncio.run(
                    open_loop(
                        creates(url, None),
                        rate=rate,
                        duration_s=cfg["durations_s"][rate],
                        timeout_s=cfg["timeout_s"],
                    )
                )
                base[f"{rate:g}"].append(load)
                if load.ok < load.sent:
                    # Requests its clients gave up on are still generating on the server.
                    stack.stop_one("baseline")
                    url = ""
            url = url or _start_baseline(stack)
            closed = asyncio.run(
                closed_loop(
                    creates(url, None),
                    concurrency=cfg["baseline_clients"],
                    duration_s=cfg["baseline_max_s"],
                    timeout_s=120,
                )
            )
            base_max.append(closed.achieved_rate)
            base_latency_light.extend(closed.latencies_ms)
            stack.check_alive()

    # LLM_CONCURRENCY is part of the default stack's settings (the same value).
    our_cfg = StackConfig(fake_latency_ms=LATENCY_MS, api_workers=WEB_WORKERS)
    with ctx.stack("architecture", our_cfg) as stack:
        tokens = stack.user_tokens(USERS)
        asyncio.run(_warm(stack.api_url, tokens[0]))
        for _ in range(ctx.repeat):
            for rate in cfg["rates"]:
                load = asyncio.run(
                    open_loop(
                        creates_as(stack.api_url, tokens),
                        rate=rate,
                        duration_s=cfg["our_duration_s"],
                        timeout_s=cfg["timeout_s"],
                    )
                )
                ours[f"{rate:g}"].append(load)
            if ctx.wrk:
                wrk = run_wrk(
                    ctx.wrk,
                    create_requests(stack.api_url, tokens),
                    connections=cfg["wrk_connections"],
                    duration_s=cfg["wrk_s"],
                )
                our_max.append(wrk.ok_per_s)
            else:
                our_max.append(
                    max_rate_python(
                        creates_as(stack.api_url, tokens),
                        concurrency=cfg["wrk_connections"],
                        duration_s=cfg["wrk_s"],
                    )["ok_rps"]
                )
            stack.check_alive()

    for rate in cfg["rates"]:
        key = f"{rate:g}"
        for side, runs in (("baseline", base[key]), ("ours", ours[key])):
            prefix = f"{side} @ {key} req/s offered"
            result.figure(f"{prefix}: p50 response", "ms", [r.summary()["p50_ms"] for r in runs])
            result.figure(f"{prefix}: p99 response", "ms", [r.summary()["p99_ms"] for r in runs])
            result.figure(
                f"{prefix}: completed", "req/s", [r.achieved_rate for r in runs], "{:.2f}"
            )
            result.figure(f"{prefix}: errors", "%", [100 * r.error_rate for r in runs], "{:.1f}")
    result.figure("baseline: max sustained rate", "req/s", base_max, "{:.2f}")
    result.figure("ours: max sustained rate (POST)", "req/s", our_max, "{:.0f}")
    ratios = [o / b for o, b in zip(our_max, base_max, strict=True) if b > 0]
    ratio_fig = result.figure("ours / baseline max rate", "x", ratios, "{:.0f}")
    light = Spread.of(base_latency_light)
    result.notes.append(
        f"Baseline response time under saturation (closed loop): median {light.median / 1000:.1f} s "
        f"over {len(light.values)} requests; the seed reported 25 s for its 'before' system."
    )
    result.target(
        f"≥ {TARGET_RATIO:.0f}x the baseline's sustainable rate",
        f"≥ {TARGET_RATIO:.0f}x",
        ratio_fig.text(),
        at_least(ratios, TARGET_RATIO),
    )
    result.raw = {
        "baseline": {
            k: [r.summary() | {"statuses": dict(r.statuses)} for r in v] for k, v in base.items()
        },
        "ours": {
            k: [r.summary() | {"statuses": dict(r.statuses)} for r in v] for k, v in ours.items()
        },
        "baseline_max_rps": base_max,
        "ours_max_rps": our_max,
    }
    return result.as_dict()


async def _warm(api_url: str, token: str) -> None:
    """A few requests first, so connection pools and imports are not in the first figures."""
    async with plain_client() as client:
        for _ in range(5):
            request = create_request(api_url, token)
            await client.post(request.url, json=request.json_body, headers=dict(request.headers))
