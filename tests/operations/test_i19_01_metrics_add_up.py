"""Issue 19, item 1: metrics that add up across a service's processes, served only with the
scrape token.

Before: every process kept its own registry, so with two API workers a scrape saw the
requests of whichever worker answered it (about half, at random), and the workers exposed
nothing at all.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from roadmap_core.metrics import processes
from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.processes import free_port
from tests.support.scrape import Scrape, scrape, status
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

REQUESTS = 1_000


def _pids_with_samples(directory: Path, kind: str) -> set[int]:
    """Processes that wrote samples of ``kind`` (counter, histogram…) in the directory."""
    return {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob(f"{kind}_*.db")}


def _metrics_dir(service: str, owner_pid: int) -> Path:
    found = list(processes.root().glob(f"{service}-{owner_pid}-*"))
    assert len(found) == 1, found
    return found[0]


async def test_i19_01_requests_over_two_api_workers_add_up(stack: Stack, capture: Capture) -> None:
    token = f"scrape-{secrets.token_hex(16)}"
    capture.secrets.add(token)
    stack.start(api=False, content_workers=0, logs_worker=False)
    api = stack.extra_api(workers=2, METRICS_TOKEN=token)
    healthz = "roadmap_api_request_duration_seconds_count"
    # The readiness probes of the start-up.
    before = (await scrape(f"{api.url}/metrics", token)).total(healthz, route="/healthz")

    # A new connection per request: the kernel hands them to both workers.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=20)
    async with httpx.AsyncClient(base_url=api.url, limits=limits, timeout=10.0) as http:
        gate = asyncio.Semaphore(20)

        async def one() -> int:
            async with gate:
                return (await http.get("/healthz")).status_code

        statuses = await asyncio.gather(*(one() for _ in range(REQUESTS)))
    assert statuses == [200] * REQUESTS

    directory = _metrics_dir("roadmap-api", api.pid)
    assert len(_pids_with_samples(directory, "histogram")) == 2, sorted(directory.iterdir())
    # Whichever worker answers the scrape, it reads the requests of both.
    for _ in range(6):
        seen = await scrape(f"{api.url}/metrics", token)
        assert seen.total(healthz, route="/healthz") - before == REQUESTS
    assert await status(f"{api.url}/metrics") == 401


async def test_i19_01_worker_metrics_count_every_child_behind_the_token(
    stack: Stack, capture: Capture, db: Db
) -> None:
    token = f"scrape-{secrets.token_hex(16)}"
    capture.secrets.add(token)
    content_port, logs_port = free_port(), free_port()
    stack.start(
        content_workers=0,
        logs_worker=False,
        METRICS_TOKEN=token,
    )
    content = stack.content_worker(
        concurrency=2, METRICS_TOKEN=token, METRICS_PORT=str(content_port)
    )
    logs = stack.logs_worker(concurrency=2, METRICS_TOKEN=token, METRICS_PORT=str(logs_port))
    content_url = f"http://127.0.0.1:{content_port}/metrics"
    logs_url = f"http://127.0.0.1:{logs_port}/metrics"

    # Served to the scrape token only.
    for url in (content_url, logs_url):
        assert await status(url) == 401
        assert await status(url, f"{token[:-1]}x") == 401
        assert await status(url.replace("/metrics", "/other"), token) == 404

    client, _ = stack.new_user()
    jobs = [client.create_roadmap(**small_request()).id for _ in range(2)]
    await db.wait_jobs(jobs, {"completed"}, within=90, context=stack.logs)

    calls = stack.fake.requests()
    content_seen = await scrape(content_url, token)
    assert (
        content_seen.total("roadmap_worker_tasks_total", task="content.plan_job", outcome="success")
        == 2
    )
    assert content_seen.total(
        "roadmap_worker_tasks_total", task="content.generate_concepts", outcome="success"
    ) >= 3 * len(jobs)
    assert content_seen.total("roadmap_jobs_finished_total", status="completed") == len(jobs)
    # Every call the provider answered, summed over both children, with its tokens.
    assert content_seen.total("roadmap_llm_calls_total", outcome="ok") == len(calls)
    assert content_seen.total("roadmap_llm_calls_total") == len(calls)
    assert content_seen.total("roadmap_llm_tokens_total", model="gpt-4o-mini") == sum(
        c["prompt_tokens"] + c["completion_tokens"] for c in calls
    )
    assert content_seen.total(
        "roadmap_llm_call_duration_seconds_count", model="gpt-4o-mini"
    ) == len(calls)
    assert content_seen.total("roadmap_llm_requests_in_flight") == 0
    assert content_seen.has("roadmap_queue_depth")
    assert content_seen.total("roadmap_queue_depth", queue="content_generation") == 0
    assert content_seen.has("roadmap_queue_oldest_age_seconds")
    directory = _metrics_dir("roadmap-worker-content", content.pid)
    assert len(_pids_with_samples(directory, "counter")) == 2, sorted(directory.iterdir())

    # Every execution-log row was counted by whichever child wrote it (polled: the logs
    # of the last steps may still be on their way).
    rows, logs_seen = 0, Scrape([])
    for _ in range(100):
        rows = int(await db.fetchval("SELECT count(*) FROM execution_logs"))
        logs_seen = await scrape(logs_url, token)
        if rows and logs_seen.total("roadmap_logs_events_total", result="inserted") == rows:
            break
        await asyncio.sleep(0.2)
    assert rows > 0
    assert logs_seen.total("roadmap_logs_events_total", result="inserted") == rows
    assert logs_seen.total("roadmap_logs_batch_size_sum") >= rows
    assert logs_seen.total("roadmap_logs_lag_seconds_count") >= 1
    assert (
        logs_seen.total("roadmap_worker_tasks_total", task="logs.write_batch", outcome="success")
        >= 1
    )
    assert logs_seen.has("roadmap_queue_depth")
    assert len(_pids_with_samples(_metrics_dir("roadmap-worker-logs", logs.pid), "counter")) >= 1
