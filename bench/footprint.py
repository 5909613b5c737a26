"""Benchmark 7 — footprint: memory per service, idle and under load (what Railway bills).

For each service the memory of all its processes is summed (uvicorn's supervisor and
workers; Celery's main process and pool children). RSS counts pages shared after fork
once per process and so overstates; PSS shares them out and is close to what the
container is charged. Idle: sampled for a few seconds once the stack has settled after
start. Loaded: the peak while N roadmaps generate and POSTs arrive at a steady rate.
Each repeat is a fresh stack. No target: the figures are the bill.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.lib.api import creates_as, plain_client, submit
from bench.lib.context import Context
from bench.lib.loadgen import open_loop
from bench.lib.memory import Memory, PeakSampler
from bench.lib.results import BenchResult
from bench.lib.stack import StackConfig

TITLE = "Footprint: memory per service"
SETTLE_S = 3.0
USERS = 200


def run(ctx: Context) -> dict[str, Any]:
    idle_s = ctx.scale(2, 1)
    load_s = ctx.scale(10, 2)
    settle_s = ctx.scale(SETTLE_S, 1)
    roadmaps = 10 if not ctx.smoke else 2
    post_rate = 100.0
    result = BenchResult(TITLE)
    result.settings = {
        "idle": f"peak over {idle_s:g} s, {settle_s:g} s after the stack reported ready",
        "load": f"{roadmaps} roadmaps submitted at once + POST /roadmaps at {post_rate:g} req/s "
        f"({USERS} users) for {load_s:g} s (fake LLM 200 ms)",
        "services": "API: 2 uvicorn workers; content worker: 2 prefork children; "
        "logs worker: 2 prefork children",
        "repeats": f"{ctx.repeat} (fresh stack each)",
    }
    idle: list[dict[str, Memory]] = []
    loaded: list[dict[str, Memory]] = []
    for i in range(ctx.repeat):
        with ctx.stack(f"footprint-{i + 1}", StackConfig()) as stack:
            names = stack.services()
            token = stack.user_token()
            tokens = stack.user_tokens(USERS)
            time.sleep(settle_s)
            with PeakSampler(names, stack.pids) as sampler:
                time.sleep(idle_s)
            idle.append(dict(sampler.peak))
            with PeakSampler(names, stack.pids) as sampler:
                asyncio.run(_load(stack.api_url, token, tokens, roadmaps, post_rate, load_s))
            loaded.append(dict(sampler.peak))
            stack.check_alive()

    services = list(idle[0]) if idle else []
    for name in services:
        processes = idle[0][name].processes
        for label, runs in (("idle", idle), ("loaded", loaded)):
            result.figure(
                f"{name} ({processes} processes) {label}: RSS sum", "MiB",
                [r[name].rss_mib for r in runs if name in r], "{:.0f}",
            )  # fmt: skip
            result.figure(
                f"{name} {label}: PSS sum", "MiB",
                [r[name].pss_mib for r in runs if name in r], "{:.0f}",
            )  # fmt: skip
    result.figure(
        "all services loaded: PSS sum", "MiB",
        [sum(m.pss_mib for m in r.values()) for r in loaded], "{:.0f}",
    )  # fmt: skip
    result.raw = {
        "idle": [{k: vars(v) for k, v in r.items()} for r in idle],
        "loaded": [{k: vars(v) for k, v in r.items()} for r in loaded],
    }
    return result.as_dict()


async def _load(
    api_url: str, token: str, tokens: list[str], roadmaps: int, rate: float, seconds: float
) -> None:
    async with plain_client() as client:
        await submit(client, api_url, token, roadmaps)
    await open_loop(creates_as(api_url, tokens), rate=rate, duration_s=seconds)
