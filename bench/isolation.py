"""Benchmark 5 — isolation: reads stay fast while roadmaps generate.

The original single service froze its UI while it generated. Here a client polls
`GET /api/v1/roadmaps/{id}` (open loop, fixed rate) for one finished 24-concept roadmap,
first with the system idle, then while N roadmaps are submitted at once and generate
(the window ends when all N are finished, or at a cap). Same roadmap, same response body
in both windows, so the only difference is the load. Target: p99 under load ≤ 2x idle.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench.lib.api import plain_client, reads, submit, unfinished_in_db, wait_terminal
from bench.lib.context import Context
from bench.lib.loadgen import LoadResult, open_loop
from bench.lib.results import BenchResult, at_most
from bench.lib.stack import BenchStack, StackConfig

TITLE = "Isolation: reads while roadmaps generate"
LATENCY_MS = 200
TARGET_FACTOR = 2.0


def run(ctx: Context) -> dict[str, Any]:
    concurrent = 10 if not ctx.smoke else 1
    rate = 20.0
    idle_s = ctx.scale(10, 1)
    cap_s = ctx.scale(60, 5)
    settle_s = ctx.scale(5, 0.5)
    result = BenchResult(TITLE)
    result.settings = {
        "fake LLM latency": f"{LATENCY_MS} ms per call",
        "read load": f"GET /api/v1/roadmaps/{{id}} at {rate:g} req/s, open loop",
        "idle window": f"{idle_s:g} s",
        "load": f"{concurrent} roadmaps submitted at once; reads until all are finished "
        f"(at most {cap_s:g} s)",
        "services": "API (2 uvicorn workers), content worker (2 prefork children), logs worker",
        "repeats": str(ctx.repeat),
    }
    idle: list[LoadResult] = []
    loaded: list[LoadResult] = []
    gen_s: list[float] = []
    unfinished: list[float] = []
    with ctx.stack("isolation", StackConfig(fake_latency_ms=LATENCY_MS)) as stack:
        token = stack.user_token()
        target_id = asyncio.run(_one_finished(stack, token))
        time.sleep(settle_s)  # its last log batches and progress events are still in flight
        for _ in range(ctx.repeat):
            idle.append(
                asyncio.run(
                    open_loop(
                        reads(stack.api_url, token, target_id),
                        rate=rate,
                        duration_s=idle_s,
                        warmup_s=ctx.scale(2.0, 0.2),
                    )
                )
            )
            load, seconds, left = asyncio.run(
                _under_load(stack, token, target_id, concurrent, rate, cap_s)
            )
            loaded.append(load)
            gen_s.append(seconds)
            unfinished.append(float(left))
            stack.check_alive()

    idle_p99 = [r.summary()["p99_ms"] for r in idle]
    load_p99 = [r.summary()["p99_ms"] for r in loaded]
    result.figure("idle: p50", "ms", [r.summary()["p50_ms"] for r in idle], "{:.2f}")
    result.figure("idle: p99", "ms", idle_p99, "{:.2f}")
    result.figure("under load: p50", "ms", [r.summary()["p50_ms"] for r in loaded], "{:.2f}")
    result.figure("under load: p99", "ms", load_p99, "{:.2f}")
    result.figure("under load: errors", "%", [100 * r.error_rate for r in loaded], "{:.1f}")
    ratios = [b / a for a, b in zip(idle_p99, load_p99, strict=True) if a > 0]
    ratio = result.figure("p99 under load / p99 idle", "x", ratios, "{:.2f}")
    result.figure(f"time for {concurrent} roadmaps to finish", "s", gen_s, "{:.1f}")
    if any(unfinished):
        result.notes.append(
            f"Some roadmaps were still generating when the window closed at {cap_s:g} s "
            f"(per repeat: {[int(u) for u in unfinished]})."
        )
    result.target(
        "read p99 under load ≤ 2x idle", f"≤ {TARGET_FACTOR:g}x", ratio.text(),
        at_most(ratios, TARGET_FACTOR),
    )  # fmt: skip
    result.raw = {
        "idle": [r.summary() for r in idle],
        "loaded": [r.summary() | {"statuses": dict(r.statuses)} for r in loaded],
        "generation_s": gen_s,
    }
    return result.as_dict()


async def _one_finished(stack: BenchStack, token: str) -> str:
    async with plain_client() as client:
        (job_id,) = await submit(client, stack.api_url, token, 1)
        await wait_terminal(client, stack.api_url, token, [job_id], timeout_s=120)
    return job_id


async def _under_load(
    stack: BenchStack, token: str, target_id: str, count: int, rate: float, cap_s: float
) -> tuple[LoadResult, float, int]:
    conn = await asyncpg.connect(stack.fresh.database_url, timeout=10)
    try:
        async with plain_client() as client:
            started = time.perf_counter()
            ids = await submit(client, stack.api_url, token, count)
        done = asyncio.Event()
        finished_at: list[float] = []

        async def watch() -> int:
            left = count
            while time.perf_counter() - started < cap_s:
                left = await unfinished_in_db(conn, ids)
                if left == 0:
                    finished_at.append(time.perf_counter())
                    break
                await asyncio.sleep(0.25)
            done.set()
            return left

        watcher = asyncio.create_task(watch())
        load = await open_loop(
            reads(stack.api_url, token, target_id),
            rate=rate,
            duration_s=cap_s,
            until=done.is_set,
        )
        left = await watcher
    finally:
        await conn.close()
    seconds = (finished_at[0] if finished_at else time.perf_counter()) - started
    return load, seconds, left
