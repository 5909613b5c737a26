"""Benchmark 12 — mentor chat: time to first token.

A client keeps the roadmap's chat stream open (`GET …/chat/events`), asks a question
about a concept (`POST …/chat/messages`) and times the first `delta` of its answer, one
question after the other. The fake LLM streams with a first-token latency of
`LATENCY_MS` (no jitter); what is left is the system's own share: the POST (quota,
two rows, enqueue), the chat queue, the worker's claim and prompt (plan, tutorial,
history), the LLM client's limiter, and the delta's way through Redis and the API to the
client. Measured idle, then while 10 roadmaps generate (the content worker busy, the
fake LLM and the machine shared). Targets: p95 of the share ≤ 100 ms idle and ≤ 2x that
under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from bench.lib.api import auth, plain_client, submit, unfinished_in_db, wait_terminal
from bench.lib.context import Context
from bench.lib.results import BenchResult, at_most
from bench.lib.stack import BenchStack, StackConfig
from bench.lib.stats import percentile

TITLE = "Mentor chat: time to first token"
LATENCY_MS = 200
IDLE_TARGET_MS = 100.0
LOAD_FACTOR = 2.0
API = "/api/v1"
CONTENT_APP = "roadmap_worker_content.app:celery_app"


def run(ctx: Context) -> dict[str, Any]:
    questions = int(ctx.scale(40, 3))
    concurrent = 10 if not ctx.smoke else 1
    cap_s = ctx.scale(90, 10)
    result = BenchResult(TITLE)
    result.settings = {
        "fake LLM": f"streams; first token after {LATENCY_MS} ms (no jitter), then 0 ms per piece",
        "questions": f"{questions} per window, one after the other, about a concept of a "
        "finished 24-concept roadmap, on an open chat stream",
        "load": f"{concurrent} roadmaps submitted at once; questions until they are done "
        f"(at most {cap_s:g} s)",
        "services": "API (2 uvicorn workers), content worker (2 prefork children), chat worker "
        "(2 prefork children, -Q chat), logs worker",
        "figure": "time from sending the POST to the first delta event, minus the fake "
        "LLM's first-token latency",
        "warm-up": "6 questions first, not counted (each chat child's first answer opens "
        "its connections)",
        "repeats": str(ctx.repeat),
    }
    idle_p95: list[float] = []
    load_p95: list[float] = []
    idle_p50: list[float] = []
    load_p50: list[float] = []
    load_counts: list[float] = []
    before_idle_p50: list[float] = []
    before_load_p50: list[float] = []
    post_idle_p50: list[float] = []
    raw: dict[str, Any] = {"idle": [], "loaded": []}
    with ctx.stack("chat", StackConfig(fake_latency_ms=LATENCY_MS)) as stack:
        _start_chat_worker(stack)
        token = stack.user_token()
        job_id, concept_id = asyncio.run(_finished_roadmap(stack, token))
        # Each chat child's first answer pays for its connections (LLM, Redis, Postgres).
        asyncio.run(_ask_many(stack, token, job_id, concept_id, 6, None))
        for _ in range(ctx.repeat):
            idle_before: list[float] = []
            idle_posts: list[float] = []
            load_before: list[float] = []
            idle = asyncio.run(
                _ask_many(
                    stack, token, job_id, concept_id, questions, None, idle_before, idle_posts
                )
            )
            loaded = asyncio.run(
                _under_load(
                    stack, token, job_id, concept_id, questions, concurrent, cap_s, load_before
                )
            )
            before_idle_p50.append(percentile(idle_before, 50))
            post_idle_p50.append(percentile(idle_posts, 50))
            before_load_p50.append(percentile(load_before, 50))
            for samples, p95s, p50s, key in (
                (idle, idle_p95, idle_p50, "idle"),
                (loaded, load_p95, load_p50, "loaded"),
            ):
                share = [s - LATENCY_MS for s in samples]
                p95s.append(percentile(share, 95))
                p50s.append(percentile(share, 50))
                raw[key].append(samples)
            load_counts.append(float(len(loaded)))
            stack.check_alive()

    result.figure("ttft_overhead_idle_p50", "ms", idle_p50, "{:.1f}")
    idle_fig = result.figure("ttft_overhead_idle_p95", "ms", idle_p95, "{:.1f}")
    result.figure("ttft_overhead_load_p50", "ms", load_p50, "{:.1f}")
    load_fig = result.figure("ttft_overhead_load_p95", "ms", load_p95, "{:.1f}")
    result.figure("questions_under_load", "", load_counts, "{:.0f}")
    # Where the share goes: up to the LLM request's arrival at the fake, and the rest (the
    # fake's own work besides its latency, and the first delta's way back to the client).
    result.figure("post_to_llm_request_idle_p50", "ms", before_idle_p50, "{:.1f}")
    result.figure("post_to_llm_request_load_p50", "ms", before_load_p50, "{:.1f}")
    result.figure("post_response_idle_p50", "ms", post_idle_p50, "{:.1f}")
    result.target(
        "first token p95 idle, minus the fake's latency", f"≤ {IDLE_TARGET_MS:g} ms",
        idle_fig.text(), at_most(idle_p95, IDLE_TARGET_MS),
    )  # fmt: skip
    result.target(
        "the same while 10 roadmaps generate", f"≤ {LOAD_FACTOR * IDLE_TARGET_MS:g} ms",
        load_fig.text(), at_most(load_p95, LOAD_FACTOR * IDLE_TARGET_MS),
    )  # fmt: skip
    result.raw = raw
    return result.as_dict()


def _start_chat_worker(stack: BenchStack) -> None:
    before = stack._heartbeats("worker-content")
    stack.spawn(
        "worker-chat",
        [sys.executable, "-m", "celery", "-A", CONTENT_APP, "worker", "-Q", "chat",
         "--pool", "prefork", "--concurrency", "2",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
         "-n", f"chat-{secrets.token_hex(3)}@%h"],
        stop_signal=signal.SIGKILL,
    )  # fmt: skip
    # The chat worker beats as a content worker (its queues say chat).
    stack.wait_for("worker-chat", lambda: stack._heartbeats("worker-content") > before, "beating")


async def _finished_roadmap(stack: BenchStack, token: str) -> tuple[str, str]:
    async with plain_client() as client:
        (job_id,) = await submit(client, stack.api_url, token, 1)
        await wait_terminal(client, stack.api_url, token, [job_id], timeout_s=120)
        detail = await client.get(f"{stack.api_url}{API}/roadmaps/{job_id}", headers=auth(token))
        framework = detail.json()["framework"]
    concept = framework["stages"][0]["modules"][0]["concepts"][0]
    return job_id, str(concept["id"])


async def _events(client: httpx.AsyncClient, url: str, token: str) -> AsyncIterator[dict[str, Any]]:
    async with client.stream("GET", url, headers=auth(token), timeout=None) as response:
        response.raise_for_status()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "event" in fields:
                yield {"event": fields["event"], "data": json.loads(fields.get("data", "{}"))}
            fields = {}


async def _ask_many(
    stack: BenchStack,
    token: str,
    job_id: str,
    concept_id: str,
    count: int,
    until: asyncio.Event | None,
    before: list[float] | None = None,
    posts: list[float] | None = None,
) -> list[float]:
    """Times (ms) from POST to the first delta of each answer, one question at a time;
    ``before`` gets, per answer, the time from POST to the LLM request's arrival at the
    fake (the API, the queue and the worker's preparation)."""
    base = f"{stack.api_url}{API}/roadmaps/{job_id}/chat"
    firsts: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue()
    samples: list[float] = []
    fake = stack.llm_base_url.removesuffix("/v1") + "/_fake/requests"
    async with plain_client(60.0) as client:
        seen = max((r["seq"] for r in (await client.get(fake)).json()["requests"]), default=0)

        async def read() -> None:
            async for event in _events(client, f"{base}/events", token):
                data = event["data"]
                if event["event"] == "delta" and data["index"] == 0:
                    await firsts.put(("delta", data["message_id"], time.perf_counter()))
                elif event["event"] == "message":
                    await firsts.put(("message", data["message"]["id"], time.perf_counter()))

        reader = asyncio.create_task(read())
        try:
            await asyncio.sleep(0.5)  # the stream is open before the first question
            for i in range(count):
                if until is not None and until.is_set() and i > 0:
                    break
                sent, sent_wall = time.perf_counter(), time.time()
                response = await client.post(
                    f"{base}/messages",
                    json={"content": f"Question {i}: how do I practise this?",
                          "concept_id": concept_id},
                    headers=auth(token),
                )  # fmt: skip
                if response.status_code != 202:
                    raise RuntimeError(
                        f"POST chat answered {response.status_code}: {response.text}"
                    )
                answer_id = response.json()["answer_id"]
                if posts is not None:
                    posts.append((time.perf_counter() - sent) * 1000.0)
                first = None
                while True:
                    kind, message_id, at = await asyncio.wait_for(firsts.get(), 60)
                    if message_id != answer_id:
                        continue
                    if kind == "delta" and first is None:
                        first = at
                    if kind == "message":
                        break
                if first is None:
                    raise RuntimeError(f"answer {answer_id} ended without a delta")
                calls = [r for r in (await client.get(fake, params={"since": seen})).json()[
                    "requests"] if r.get("stream")]  # fmt: skip
                seen = max([seen, *(r["seq"] for r in calls)])
                if calls and before is not None:
                    before.append((calls[-1]["ts"] - sent_wall) * 1000.0)
                samples.append((first - sent) * 1000.0)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader
    return samples


async def _under_load(
    stack: BenchStack,
    token: str,
    job_id: str,
    concept_id: str,
    questions: int,
    count: int,
    cap_s: float,
    before: list[float],
) -> list[float]:
    conn = await asyncpg.connect(stack.fresh.database_url, timeout=10)
    try:
        async with plain_client() as client:
            started = time.perf_counter()
            ids = await submit(client, stack.api_url, token, count)
        done = asyncio.Event()

        async def watch() -> None:
            while time.perf_counter() - started < cap_s:
                if await unfinished_in_db(conn, ids) == 0:
                    break
                await asyncio.sleep(0.25)
            done.set()

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(1.0)  # planning has started: the content worker is busy
        samples = await _ask_many(stack, token, job_id, concept_id, questions, done, before)
        await watcher
    finally:
        await conn.close()
    return samples
