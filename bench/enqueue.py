"""Benchmark 2 — the enqueue path: ``POST /api/v1/roadmaps`` beside a bare FastAPI endpoint.

The real API (``python -m roadmap_api --workers 2``: uvicorn with the API's HTTP limits, as
in its image) on a fresh migrated database and its own Redis db, and — served the same way, in the same run — a
bare FastAPI app whose one endpoint answers a small JSON object (``bare_app`` below).

Per repeat:

- **latency at 200 req/s, open loop** (asyncio + httpx scheduler: request *i* is due at
  ``t0 + i/200`` and its latency counts from that due time, so a stall shows up as latency,
  not as a lower offered rate): p50 / p99 of the POST, and of the bare endpoint;
- **maximum sustained rate, closed loop** (wrk, ``CONNECTIONS`` connections): 2xx
  answers per second of the POST, and of the bare endpoint; their ratio.

The POSTs rotate over ``USERS`` users, as a real API serves many: submits of one user are
serialised by its quota lock, and a handful of users piling up thousands of unfinished
roadmaps each (nothing consumes the queue here) would make every quota count long — a
state the real quotas (5 active, 50 a day by default) never allow. Quota limits are set
out of reach so none answers 429; the counts still run on every POST. Nothing consumes the queue: the Celery
messages are dropped between phases so Redis does not grow for the whole run.

Targets: p99 ≤ 15 ms at 200 req/s; sustained rate ≥ 30 % of the bare endpoint's.

Run: ``uv run roadmap bench enqueue`` (with the other benchmarks' runner), or on its own
``uv run python bench/enqueue.py [--smoke] [--repeat N]`` from the repository root.
"""

from __future__ import annotations

from fastapi import FastAPI

# The bare endpoint lives in this module so that both servers start with the same command
# line; only light imports above this point, so the bare server loads nothing else.
bare_app = FastAPI(title="bare endpoint")


@bare_app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


import argparse  # noqa: E402 - see above
import asyncio  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

if TYPE_CHECKING:
    from bench.lib.context import Context
    from bench.lib.loadgen import Request
    from bench.lib.stack import BenchStack

TITLE = "Enqueue path: POST /api/v1/roadmaps vs a bare endpoint"
RATE = 200.0
P99_TARGET_MS = 15.0
RATIO_TARGET = 0.30
TRACING_COST_GOAL_PCT = 10.0
USERS = 5000
CONNECTIONS = 32
API_WORKERS = 2  # WEB_CONCURRENCY of the API's image; the bare server gets the same
BARE_APP = "bench.enqueue:bare_app"
ENQUEUE_QUEUES = ("content_generation", "logs")
SEND_GRACE_S = 3.0  # > ENQUEUE_TIMEOUT_S: every send has finished or given up by then
ROADMAP_BODY: dict[str, Any] = {
    "goal": "Learn Rust for embedded work",
    "level": "intermediate",
    "weekly_hours": 6,
    "weeks": 12,
    "language": "en",
}


def run(ctx: Context) -> dict[str, Any]:
    from bench.lib.results import BenchResult
    from bench.lib.stack import StackConfig

    duration_s = ctx.scale(10, 2)
    max_rate_s = ctx.scale(10, 2)
    config = StackConfig(
        fake_llm=False,
        content_worker=False,
        logs_worker=False,
        api_workers=API_WORKERS,
        # The API's own defaults (a fixed pool; settings.py says why), not the shared
        # 10 + 10: the same 20 connections per worker, without reconnects under load.
        env={"DB_POOL_SIZE": "20", "DB_MAX_OVERFLOW": "0"},
    )
    result = BenchResult(TITLE)
    rounds: list[dict[str, Any]] = []
    with ctx.stack("enqueue", config) as stack:
        bare_url = start_bare(stack)
        tokens = asyncio.run(make_users(stack.fresh.database_url, stack.env["JWT_SECRET_KEY"]))
        post = post_requests(stack.api_url, tokens)
        get_bare = bare_requests(bare_url)
        asyncio.run(warm_up(post, get_bare))
        for _ in range(ctx.repeat):
            rounds.append(one_round(ctx, stack, post, get_bare, tokens, bare_url,
                                    duration_s, max_rate_s))  # fmt: skip
            stack.check_alive()
    tracing = tracing_rounds(ctx, config, duration_s, max_rate_s)
    result.settings = {
        "servers": f"uvicorn --workers {API_WORKERS} for both (the API image's WEB_CONCURRENCY)",
        "latency": f"open loop at {RATE:g} req/s for {duration_s:g} s per endpoint",
        "max rate": (
            f"wrk, {CONNECTIONS} connections, {max_rate_s:g} s per endpoint"
            if ctx.wrk
            else f"Python closed loop, {CONNECTIONS} clients (wrk unavailable)"
        ),
        "users": f"{USERS} (tokens rotate per request)",
        "API pool": "DB_POOL_SIZE=20, DB_MAX_OVERFLOW=0 per worker (the API's defaults)",
        "quotas": "out of reach (see bench/lib/stack.py UNLIMITED)",
        "POST body": json.dumps(ROADMAP_BODY),
    }
    result.settings["tracing"] = (
        "two more APIs with OTEL_EXPORTER_OTLP_ENDPOINT set, exporting to a local OTLP sink"
        " process: one tracing every request (the SDK's default sampler), one with"
        f" OTEL_TRACES_SAMPLER=parentbased_traceidratio and _ARG={SAMPLED_RATIO:g}, and one"
        " untraced, started after the rounds above with DB_POOL_SIZE=10 each (three fit in"
        f" max_connections); {tracing_rounds_per_repeat(ctx)} round(s) per repeat of the three max rates"
        f" ({tracing_seconds(ctx, max_rate_s):g} s each) in turn, each API first, middle"
        " and last in turn, the order reversed every other round; cost = 1 - traced / off"
        " within a round, median over rounds; API CPU per POST = user + system CPU of the"
        " API's processes during its round / 2xx answers (psutil)"
    )
    add_figures(result, rounds)
    add_tracing_figures(result, tracing, ctx.smoke)
    result.raw = {"rounds": rounds, "tracing": tracing}
    return result.as_dict()


def one_round(
    ctx: Context,
    stack: BenchStack,
    post: Callable[[int], Request],
    get_bare: Callable[[int], Request],
    tokens: list[str],
    bare_url: str,
    duration_s: float,
    max_rate_s: float,
) -> dict[str, Any]:
    from bench.lib.loadgen import open_loop

    post_latency = asyncio.run(open_loop(post, rate=RATE, duration_s=duration_s, warmup_s=1.0))
    drop_queues(stack.fresh.redis_url)
    bare_latency = asyncio.run(open_loop(get_bare, rate=RATE, duration_s=duration_s, warmup_s=1.0))
    post_max = max_rate(ctx, stack.api_url, tokens, max_rate_s)
    # Every 202 should have put its task in the queue: a send that timed out is left to the
    # reconciler, so a rate bought with lost sends would not be a sustained one.
    time.sleep(SEND_GRACE_S)
    accepted = post_max["requests"] - post_max["non_2xx"]
    post_max["delivered_share"] = queued(stack.fresh.redis_url) / accepted if accepted else math.nan
    drop_queues(stack.fresh.redis_url)
    bare_max = max_rate(ctx, bare_url, None, max_rate_s)
    return {
        "post_at_rate": post_latency.summary(),
        "post_statuses": dict(post_latency.statuses),
        "bare_at_rate": bare_latency.summary(),
        "post_max": post_max,
        "bare_max": bare_max,
        "ratio": post_max["ok_rps"] / bare_max["ok_rps"] if bare_max["ok_rps"] else math.nan,
    }


def add_figures(result: Any, rounds: list[dict[str, Any]]) -> None:
    from bench.lib.results import Figure, Target

    def values(*path: str) -> list[float]:
        out = []
        for r in rounds:
            value: Any = r
            for key in path:
                value = value[key]
            out.append(float(value))
        return out

    figures = [
        Figure(f"POST p50 at {RATE:g} req/s", "ms", values("post_at_rate", "p50_ms"), "{:.2f}"),
        Figure(f"POST p99 at {RATE:g} req/s", "ms", values("post_at_rate", "p99_ms"), "{:.2f}"),
        Figure(f"bare p50 at {RATE:g} req/s", "ms", values("bare_at_rate", "p50_ms"), "{:.2f}"),
        Figure(f"bare p99 at {RATE:g} req/s", "ms", values("bare_at_rate", "p99_ms"), "{:.2f}"),
        Figure(f"POST errors at {RATE:g} req/s", "%",
               [100 * v for v in values("post_at_rate", "error_rate")], "{:.2f}"),
        Figure("POST max sustained rate", "req/s", values("post_max", "ok_rps"), "{:.0f}"),
        Figure("bare max sustained rate", "req/s", values("bare_max", "ok_rps"), "{:.0f}"),
        Figure("POST / bare rate", "x", values("ratio"), "{:.3f}"),
        Figure("POST sends delivered at max rate", "%",
               [100 * v for v in values("post_max", "delivered_share")], "{:.1f}"),
    ]  # fmt: skip
    result.figures.extend(figures)
    p99, ratio = figures[1].spread, figures[7].spread
    errors = max(values("post_at_rate", "error_rate"), default=math.nan)
    result.targets.extend(
        [
            Target(
                f"p99 enqueue at {RATE:g} req/s",
                f"≤ {P99_TARGET_MS:g} ms",
                figures[1].text(),
                None if math.isnan(p99.median) else p99.median <= P99_TARGET_MS and errors == 0,
            ),
            Target(
                "enqueue max rate vs bare endpoint",
                f"≥ {RATIO_TARGET:.0%}",
                figures[7].text(),
                None if math.isnan(ratio.median) else ratio.median >= RATIO_TARGET,
            ),
        ]
    )


# The traced APIs beside the untraced one: every request traced (the SDK's default
# sampler), and the head sampling docs/observability.md gives for a busy API.
SAMPLED_RATIO = 0.1
TRACED_VARIANTS: dict[str, dict[str, str]] = {
    "on": {},
    "sampled": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{SAMPLED_RATIO:g}",
    },
}
# Rounds of maximum rates per repeat: one round swings by a third on two cores, so many
# short rounds (3 s still counts thousands of requests) rather than a few long ones.
TRACING_ROUNDS_PER_REPEAT = 4


def tracing_rounds_per_repeat(ctx: Context) -> int:
    return 1 if ctx.smoke else TRACING_ROUNDS_PER_REPEAT


def tracing_seconds(ctx: Context, max_rate_s: float) -> float:
    return max_rate_s if ctx.smoke else 0.3 * max_rate_s


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (those that are gone count 0)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def tracing_rounds(
    ctx: Context, config: Any, duration_s: float, max_rate_s: float
) -> list[dict[str, Any]]:
    """The API untraced, traced and head-sampled, side by side (after the rounds above,
    each with a smaller pool so that three fit): their max rates taken in turn."""
    import contextlib
    import dataclasses

    import httpx

    from bench.lib.loadgen import open_loop
    from bench.lib.stack import free_port, http_ok

    # Three APIs of 20 connections per worker do not fit max_connections 100.
    small = {**config.env, "DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "0"}
    sink_port = free_port()
    sink_url = f"http://127.0.0.1:{sink_port}"
    variants = {"off": small} | {
        name: {**small, **env, "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url}
        for name, env in TRACED_VARIANTS.items()
    }
    rounds: list[dict[str, Any]] = []
    with contextlib.ExitStack() as apis:
        urls: dict[str, str] = {}
        users: dict[str, list[str]] = {}
        redis_urls: dict[str, str] = {}
        pids: dict[str, list[int]] = {}
        for name, env in variants.items():
            api = apis.enter_context(
                ctx.stack(f"enqueue-tracing-{name}", dataclasses.replace(config, env=env))
            )
            if name == "off":
                sink = api.spawn(
                    "otlp-sink",
                    [sys.executable, "-m", "bench.lib.otlp_sink", "--port", str(sink_port)],
                )
                api.wait_for(sink.name, lambda: http_ok(f"{sink_url}/stats"), "answering /stats")
            users[name] = asyncio.run(make_users(api.fresh.database_url, api.env["JWT_SECRET_KEY"]))
            urls[name] = api.api_url
            redis_urls[name] = api.fresh.redis_url
            post = post_requests(api.api_url, users[name])
            asyncio.run(warm_up(post, post))
            pids[name] = api.pids("api")
        names = list(urls)
        seconds = tracing_seconds(ctx, max_rate_s)
        for i in range(ctx.repeat * tracing_rounds_per_repeat(ctx)):
            # Each API first, middle and last in turn, and the order reversed every other
            # round: a drift of the machine (caches, tables growing) counts against each.
            order = names[i % len(names) :] + names[: i % len(names)]
            if i % 2:
                order.reverse()
            rates: dict[str, float] = {}
            cpu_us: dict[str, float] = {}
            for name in order:
                before = cpu_seconds(pids[name])
                measured = max_rate(ctx, urls[name], users[name], seconds)
                used = cpu_seconds(pids[name]) - before
                rates[name] = measured["ok_rps"]
                answered = measured["ok_rps"] * seconds
                cpu_us[name] = 1e6 * used / answered if answered else math.nan
                drop_queues(redis_urls[name])
            rounds.append(
                {
                    "order": order,
                    "rps": rates,
                    "cost": {
                        name: 1 - rates[name] / rates["off"] if rates["off"] else math.nan
                        for name in TRACED_VARIANTS
                    },
                    "api_cpu_us": cpu_us,
                }
            )
        for i in range(ctx.repeat):
            latency = asyncio.run(
                open_loop(
                    post_requests(urls["on"], users["on"]),
                    rate=RATE,
                    duration_s=duration_s,
                    warmup_s=1.0,
                )
            )
            drop_queues(redis_urls["on"])
            rounds[i]["on_at_rate"] = latency.summary()
        time.sleep(6.0)  # the SDK exports every 5 s: let the last batch reach the sink
        stats = httpx.get(f"{sink_url}/stats", timeout=10, trust_env=False).json()
    for one in rounds:
        one["sink"] = stats
    return rounds


def add_tracing_figures(result: Any, rounds: list[dict[str, Any]], smoke: bool) -> None:
    off = [r["rps"]["off"] for r in rounds]
    result.figure("POST max sustained rate, tracing off (paired)", "req/s", off, "{:.0f}",
                  key="enqueue_rate_tracing_off")  # fmt: skip
    result.figure("POST max sustained rate, tracing on", "req/s",
                  [r["rps"]["on"] for r in rounds], "{:.0f}",
                  key="enqueue_rate_tracing_on")  # fmt: skip
    result.figure(f"POST max sustained rate, tracing on, {SAMPLED_RATIO:.0%} of roadmaps sampled",
                  "req/s", [r["rps"]["sampled"] for r in rounds], "{:.0f}",
                  key="enqueue_rate_tracing_sampled")  # fmt: skip
    at_rate = [r["on_at_rate"]["p99_ms"] for r in rounds if "on_at_rate" in r]
    result.figure(f"POST p99 at {RATE:g} req/s, tracing on", "ms", at_rate, "{:.2f}",
                  key="enqueue_p99_tracing_on")  # fmt: skip
    for name, label in (("off", "untraced"), ("on", "every request traced"),
                        ("sampled", f"{SAMPLED_RATIO:.0%} of roadmaps sampled")):  # fmt: skip
        result.figure(f"API CPU per POST at the max rate, {label}", "µs",
                      [r["api_cpu_us"][name] for r in rounds], "{:.0f}",
                      key=f"enqueue_api_cpu_per_post_{name}")  # fmt: skip
    exported = rounds[-1]["sink"]["bytes"] if rounds else 0
    result.figure("spans exported to the sink", "bytes", [float(exported)], "{:.0f}",
                  key="enqueue_tracing_exported_bytes")  # fmt: skip
    for name, label, key in (
        ("on", "every request traced", "enqueue_tracing_cost"),
        ("sampled", f"{SAMPLED_RATIO:.0%} of roadmaps sampled", "enqueue_tracing_cost_sampled"),
    ):
        cost = [100 * r["cost"][name] for r in rounds]
        median_cost = statistics.median(cost) if cost else math.nan
        passed = None if smoke or math.isnan(median_cost) else median_cost <= TRACING_COST_GOAL_PCT
        figure = f"enqueue rate lost to tracing, {label}"
        result.figure(figure, "%", cost, "{:.1f}", key=key,
                      goal=f"≤ {TRACING_COST_GOAL_PCT:g} %", passed=passed)  # fmt: skip
        result.target(
            f"tracing on ({label}) costs ≤ 10 % of the enqueue rate",
            f"≤ {TRACING_COST_GOAL_PCT:g} %",
            f"{median_cost:.1f} %",
            passed,
            figure=figure,
        )


# -- the pieces ----------------------------------------------------------------------------


def start_bare(stack: BenchStack) -> str:
    """The bare app, served by the API's launcher exactly as the API is."""
    from bench.lib.stack import API_MODULE, free_port, http_ok

    port = free_port()
    stack.spawn(
        "bare",
        [sys.executable, "-m", API_MODULE, "--app", BARE_APP, "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(API_WORKERS), "--timeout-graceful-shutdown", "5"],
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    stack.wait_for("bare", lambda: http_ok(f"{url}/bare"), "answering /bare")
    return url


async def make_users(database_url: str, jwt_secret: str) -> list[str]:
    """``USERS`` users straight in the database, and an access token for each."""
    import asyncpg

    from roadmap_api.auth.tokens import issue_access_token
    from roadmap_api.settings import ApiSettings
    from roadmap_core.ids import new_id

    settings = ApiSettings(jwt_secret_key=jwt_secret)
    ids = [new_id() for _ in range(USERS)]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            # "!" is never a valid argon2 hash: nobody can log in with a password.
            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, '!')",
            [(uid, f"bench-{uid.hex}@example.com") for uid in ids],
        )
    finally:
        await conn.close()
    return [issue_access_token(settings, uid, 0).token for uid in ids]


def post_requests(api_url: str, tokens: list[str]) -> Callable[[int], Request]:
    from bench.lib.loadgen import Request

    url = f"{api_url}/api/v1/roadmaps"
    prepared = [
        Request("POST", url, ROADMAP_BODY, {"Authorization": f"Bearer {t}"}) for t in tokens
    ]
    return lambda i: prepared[i % len(prepared)]


def bare_requests(bare_url: str) -> Callable[[int], Request]:
    from bench.lib.loadgen import Request

    request = Request("GET", f"{bare_url}/bare")
    return lambda _i: request


async def warm_up(post: Callable[[int], Request], get_bare: Callable[[int], Request]) -> None:
    """Connections, prepared statements and caches of every worker process, unmeasured."""
    from bench.lib.loadgen import open_loop

    await open_loop(post, rate=100, duration_s=2)
    await open_loop(get_bare, rate=100, duration_s=2)


def queued(redis_url: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(ENQUEUE_QUEUES[0]))
    finally:
        client.close()


def drop_queues(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(*ENQUEUE_QUEUES)
    finally:
        client.close()


def max_rate(
    ctx: Context, base_url: str, tokens: list[str] | None, duration_s: float
) -> dict[str, float]:
    from bench.lib.loadgen import max_rate_python, run_wrk

    make = post_requests(base_url, tokens) if tokens else bare_requests(base_url)
    if ctx.wrk is None:
        out = max_rate_python(make, concurrency=CONNECTIONS, duration_s=duration_s)
        out.setdefault("requests", out["sent"])
        out.setdefault("non_2xx", out["sent"] - out["ok"])
        return out
    # One request per user, sent in turn (wrk formats them once, so it stays cheap).
    requests: list[Request] = [make(i) for i in range(len(tokens) if tokens else 1)]
    return run_wrk(ctx.wrk, requests, connections=CONNECTIONS, duration_s=duration_s).summary()


# -- on its own ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds per phase")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bench.lib.context import Context
    from bench.lib.infra import servers
    from bench.lib.loadgen import ensure_wrk
    from roadmap_devservers._process import private_temp_dir

    repeat = args.repeat or (1 if args.smoke else 3)
    wrk, wrk_note = ensure_wrk()
    logs = Path(tempfile.mkdtemp(prefix="roadmap-bench-enqueue-logs-"))
    started = time.monotonic()
    with (
        private_temp_dir("roadmap-bench-") as tmp,
        servers(tmp) as found,
        Context(found, args.smoke, repeat, logs, wrk, wrk_note) as ctx,
    ):
        outcome = run(ctx)
    outcome["notes"] = [
        *outcome.get("notes", []),
        f"load generator: {wrk_note}; process logs in {logs}",
        f"took {time.monotonic() - started:.0f} s; run id {uuid.uuid4().hex[:8]}",
    ]
    print(json.dumps({k: v for k, v in outcome.items() if k != "raw"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
