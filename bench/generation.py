"""Generation wall time vs the critical-path bound (the content worker).

A 24-concept roadmap against the fake LLM answering every call in L = 200 ms,
with a budget of K concurrent LLM calls, from submit (job row inserted like the
API does, then ``content.plan_job`` sent) to the ``completed`` progress event.
Planning is two sequential calls (intent, curriculum) and content is 3 x 24
independent calls, so no schedule beats

    bound = 2*L + ceil(3*24 / K) * L

Target: the median wall time within 1.15x of the bound, for K = 8 and K = 16.

The budget is configured, not assumed: one worker process with
``WORKER_CONCURRENCY = 2`` children, ``LLM_CONCURRENCY = K / 2`` calls per child,
and ``CONCEPT_BATCH_SIZE = 12`` so each child gets one task of 36 calls. The fake
records how many requests it was serving when each arrived; the maximum is
reported to show the budget held. Each worker first runs one unmeasured job
(the cold start of its children is reported apart).

Standalone: ``uv run python bench/generation.py --k 8 --k 16 --repeat 3``. Servers:
the given URLs, else ``TEST_DATABASE_URL``/``TEST_REDIS_URL`` or embedded ones (a
fresh database and Redis db either way). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

LATENCY_MS = 200.0
CONCEPTS = 24
CHILDREN = 2
TARGET_RATIO = 1.15
JOB_TIMEOUT_S = 120.0


def bound_s(k: int, latency_s: float, concepts: int) -> float:
    return (2 + math.ceil(3 * concepts / k)) * latency_s


@contextlib.contextmanager
def _servers(database_url: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    """The given URLs (migrated here), or a fresh database and a Redis db of our own."""
    from roadmap_db.testing import migrate_to_head
    from roadmap_devservers import provide
    from roadmap_devservers.pgdb import temporary_database
    from roadmap_devservers.redisdb import claimed_redis_db, owned_redis_db

    with contextlib.ExitStack() as stack:
        if not database_url:
            server = stack.enter_context(provide.provide_postgres())
            database_url = stack.enter_context(temporary_database(server, prefix="bench_gen_"))
        asyncio.run(migrate_to_head(database_url))
        if not redis_url:
            server = stack.enter_context(provide.provide_redis())
            claim = claimed_redis_db if provide.redis_is_shared() else owned_redis_db
            redis_url = stack.enter_context(claim(server))
        yield database_url, redis_url


async def _one_job(database_url: str, redis_url: str) -> dict[str, Any]:
    """Submit one roadmap like the API and wait for its terminal progress event."""
    from redis.asyncio import Redis

    from roadmap_core.celery_app import create_celery_app
    from roadmap_core.contracts import send_plan_job
    from roadmap_core.progress import ProgressType, decode_entry, stream_key
    from roadmap_core.settings import RedisSettings
    from roadmap_db.engine import ProcessDatabase
    from roadmap_db.repositories.job_lifecycle import get_job
    from roadmap_db.testing import settings_for
    from roadmap_worker_content.testing import Rows, make_request

    db = ProcessDatabase(settings_for(database_url), "bench-generation")
    redis = Redis.from_url(redis_url)
    app = create_celery_app("bench-generation", RedisSettings(redis_url=redis_url))
    try:
        job_id = await Rows(db).job(make_request(goal="Learn Rust for embedded work"))
        key = stream_key(job_id)
        started = time.perf_counter()
        await asyncio.to_thread(send_plan_job, app, job_id)
        last_id, final = "0-0", None
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while final is None and time.monotonic() < deadline:
            answer: Any = await redis.xread({key: last_id}, block=1000)
            for _, entries in answer or []:
                for entry_id, fields in entries:
                    last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    event = decode_entry(fields)
                    if event.type.is_terminal:
                        final = event
        wall = time.perf_counter() - started
        async with db.sessions() as session:
            job = await get_job(session, job_id)
        if final is None or final.type is not ProgressType.completed or job is None:
            raise RuntimeError(f"job {job_id} did not complete: {final}")
        status = final.data.model_dump(mode="json").get("status")
        if status != "completed":
            raise RuntimeError(f"job {job_id} ended {status}")
        return {"wall_s": wall, "llm_calls": job.llm_calls}
    finally:
        app.close()
        await redis.aclose()
        await db.dispose()


async def _fake_turnaround(base_url: str, k: int, rounds: int = 3) -> float:
    """Median seconds the fake takes to answer a content request when k arrive at once.

    The fake's own work (building the answer, serving k requests on one event loop)
    comes on top of its configured latency; this is the L a perfect client would see.
    """
    import httpx

    from roadmap_core.domain import Tutorial
    from roadmap_core.llm.schema import response_format
    from roadmap_core.llm.templates import PromptName, render_messages
    from roadmap_core.pipeline import concept_contexts
    from roadmap_worker_content.testing import make_framework, make_request

    context = concept_contexts(make_framework(1))["concept-0"]
    body = {
        "model": "gpt-4o-mini",
        "messages": render_messages(
            PromptName.tutorial,
            language="en",
            request=make_request(),
            context=context,
            instructions=None,
        ),
        "response_format": response_format(Tutorial),
    }
    durations: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one() -> float:
            started = time.perf_counter()
            (await client.post("/chat/completions", json=body)).raise_for_status()
            return time.perf_counter() - started

        await one()
        for _ in range(rounds):
            durations += await asyncio.gather(*(one() for _ in range(k)))
    return statistics.median(durations)


def _measure_k(
    k: int,
    repeat: int,
    database_url: str,
    redis_url: str,
    log_dir: Path,
    latency_ms: float,
    concepts: int,
) -> dict[str, Any]:
    from roadmap_dev.fake_llm import fake_llm_server
    from roadmap_worker_content.testing import running_worker

    per_child = max(1, k // CHILDREN)
    env = {
        "LLM_CONCURRENCY": str(per_child),
        "CONCEPT_BATCH_SIZE": str(math.ceil(concepts / CHILDREN)),
        # The bench measures scheduling, not the limiter: far above what the run needs.
        "LLM_RPM": "1000000",
        "LLM_TPM": "1000000000",
        "LLM_TIMEOUT_S": "30",
        "RECONCILE_INTERVAL_S": "15",
        "STALE_AGE_S": "60",
        "ITEM_LEASE_S": "60",
        "LOG_LEVEL": "WARNING",
    }
    with (
        # No client-pid lookups: the bench needs no pids, and they cost the fake CPU.
        fake_llm_server(latency_ms=latency_ms, concepts=concepts, track_client_pid=False) as fake,
        running_worker(
            database_url=database_url,
            redis_url=redis_url,
            llm_base_url=fake.base_url,
            log_dir=log_dir,
            concurrency=CHILDREN,
            env=env,
        ),
    ):
        turnaround = asyncio.run(_fake_turnaround(fake.base_url, k))
        cold = asyncio.run(_one_job(database_url, redis_url))
        walls: list[float] = []
        in_flight: list[int] = []
        calls: list[int] = []
        for _ in range(repeat):
            fake.reset()
            result = asyncio.run(_one_job(database_url, redis_url))
            walls.append(result["wall_s"])
            calls.append(result["llm_calls"])
            in_flight.append(max((r["in_flight"] for r in fake.requests()), default=0))
    bound = bound_s(k, latency_ms / 1000, concepts)
    median = statistics.median(walls)
    effective_bound = bound_s(k, turnaround, concepts)
    return {
        "k": k,
        "children": CHILDREN,
        "llm_concurrency_per_child": per_child,
        "bound_s": bound,
        "wall_s": walls,
        "median_s": median,
        "ratio": median / bound,
        "cold_first_job_s": cold["wall_s"],
        "max_in_flight": max(in_flight),
        "fake_turnaround_s": turnaround,
        "bound_with_fake_turnaround_s": effective_bound,
        "ratio_to_fake_turnaround_bound": median / effective_bound,
        "llm_calls": calls,
    }


def run(
    k_values: Sequence[int] = (8, 16),
    repeat: int = 3,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    log_dir: Path | None = None,
    smoke: bool = False,
    latency_ms: float = LATENCY_MS,
    concepts: int = CONCEPTS,
) -> dict[str, Any]:
    """Measure every K; returns the figures, targets (judged unless ``smoke``) and raw data."""
    logs = Path(log_dir or tempfile.mkdtemp(prefix="bench-generation-")) / "generation"
    logs.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with _servers(database_url, redis_url) as (db_url, r_url):
        for k in k_values:
            results.append(_measure_k(k, repeat, db_url, r_url, logs, latency_ms, concepts))
    figures: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for r in results:
        k, walls = r["k"], r["wall_s"]
        figures += [
            {
                "name": f"K={k} wall time",
                "unit": "s",
                "values": walls,
                "text": f"{r['median_s']:.3f} s ({min(walls):.3f}-{max(walls):.3f})",
            },
            {
                "name": f"K={k} bound",
                "unit": "s",
                "values": [r["bound_s"]],
                "text": f"{r['bound_s']:.3f} s",
            },
            {
                "name": f"K={k} wall / bound",
                "unit": "x",
                "values": [w / r["bound_s"] for w in walls],
                "text": f"{r['ratio']:.3f}x",
            },
            {
                "name": f"K={k} cold first job (not judged)",
                "unit": "s",
                "values": [r["cold_first_job_s"]],
                "text": f"{r['cold_first_job_s']:.3f} s",
            },
            {
                "name": f"K={k} fake turnaround at K concurrent calls (not judged)",
                "unit": "s",
                "values": [r["fake_turnaround_s"]],
                "text": f"{r['fake_turnaround_s'] * 1000:.0f} ms (configured {latency_ms:g} ms)",
            },
            {
                "name": f"K={k} wall / bound at that turnaround (not judged)",
                "unit": "x",
                "values": [r["ratio_to_fake_turnaround_bound"]],
                "text": f"{r['ratio_to_fake_turnaround_bound']:.3f}x",
            },
            {
                "name": f"K={k} max concurrent LLM calls seen",
                "unit": "calls",
                "values": [r["max_in_flight"]],
                "text": str(r["max_in_flight"]),
            },
        ]
        targets.append(
            {
                "name": f"wall time, K={k}",
                "target": f"<= {TARGET_RATIO}x bound ({TARGET_RATIO * r['bound_s']:.2f} s)",
                "measured": f"{r['median_s']:.3f} s = {r['ratio']:.3f}x",
                "pass": None if smoke else bool(r["ratio"] <= TARGET_RATIO),
                "figure": f"K={k} wall / bound",
            }
        )
    return {
        "title": "Generation wall time vs the critical-path bound",
        "settings": {
            "latency per call": f"{latency_ms:g} ms (no jitter)",
            "concepts": concepts,
            "worker": f"1 process, {CHILDREN} prefork children, LLM_CONCURRENCY = K/{CHILDREN}",
            "repeats": repeat,
            "bound": "2*L + ceil(3*concepts/K)*L",
        },
        "figures": figures,
        "targets": targets,
        "notes": [
            "wall = submit (job row committed, plan_job sent) -> `completed` progress event",
            "each worker ran one unmeasured job first (child cold start)",
            "fake turnaround: a bare client's median time per call with K calls at once; the"
            " fake's own work adds to its configured latency, and no worker can beat that",
        ],
        "raw": {"results": results},
    }


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--k", type=int, action="append", help="LLM call budget (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="a database of our own (default: a fresh one)")
    parser.add_argument("--redis-url", help="a Redis db of our own (default: a fresh one)")
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--concepts", type=int, default=CONCEPTS)
    parser.add_argument("--smoke", action="store_true", help="judge no target")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat must be between 1 and 20")
    result = run(
        tuple(args.k or (8, 16)),
        args.repeat,
        database_url=args.database_url,
        redis_url=args.redis_url,
        smoke=args.smoke,
        latency_ms=args.latency_ms,
        concepts=args.concepts,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    for fig in result["figures"]:
        print(f"{fig['name']:>40}: {fig['text']}")
    for t in result["targets"]:
        print(f"target {t['name']}: {t['measured']} (target {t['target']}) pass={t['pass']}")
    return 0 if all(t["pass"] is not False for t in result["targets"]) else 1


if __name__ == "__main__":
    sys.exit(_main())
