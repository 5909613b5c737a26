"""Promise 3: SIGTERM (a redeploy) → running work finishes or is handed back; none waits for
the visibility timeout.

The worker runs with ``REMAP_SIGTERM=SIGQUIT`` (its entry point sets it): SIGTERM starts
Celery's soft shutdown, tasks get ``SOFT_SHUTDOWN_TIMEOUT_S`` (3 s here), then their
unacknowledged messages go back to Redis. The replacement worker runs *without* a
reconciler and the visibility timeout is an hour, so only a handed-back message can
finish the work the first worker held.
"""

from __future__ import annotations

import signal
import time

import pytest

from roadmap_dev.fake_llm import FakeLLM
from tests.support.db import Db
from tests.support.llmlog import item_of, per_item, requests_after_save, wait_for_request
from tests.support.stack import FAST_SETTINGS, Stack, small_request

pytestmark = pytest.mark.slow

SOFT_SHUTDOWN_S = float(FAST_SETTINGS["SOFT_SHUTDOWN_TIMEOUT_S"])
# Soft shutdown + closing the pool and the runtime on a loaded machine.
EXIT_BOUND_S = SOFT_SHUTDOWN_S + 20
NO_RECONCILER = {"RECONCILER_ENABLED": "false"}


async def _terminate_mid_task(
    stack: Stack, db: Db, fake: FakeLLM, latency_ms: float
) -> tuple[str, float]:
    """SIGTERM the worker while content calls of ``latency_ms`` are in flight."""
    worker = stack.content_workers()[0]
    client, _ = stack.new_user()
    # Plan at full speed, stopping at the review; only the content calls are slow.
    job = client.create_roadmap(**small_request(review=True))
    await db.wait_jobs([job.id], {"awaiting_review"}, within=60, context=stack.logs)
    fake.configure(latency_ms=latency_ms)
    client.review(job.id, approve=True)
    wait_for_request(
        fake,
        lambda r: item_of(r) is not None and r["pid"] in worker.children(),
        timeout=60,
        what="for content from a pool child",
    )
    started = time.monotonic()
    worker.send(signal.SIGTERM)
    code = worker.wait(EXIT_BOUND_S)
    took = time.monotonic() - started
    assert code is not None, f"worker still running {EXIT_BOUND_S}s after SIGTERM"
    return str(job.id), took


async def test_p03_sigterm_hands_running_work_back_without_visibility_timeout(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    stack.start(concurrency=2, settings=NO_RECONCILER)
    # Calls take longer than the soft shutdown allows: the work must be handed back.
    job, took = await _terminate_mid_task(stack, db, fake, latency_ms=8000)
    assert took >= SOFT_SHUTDOWN_S - 0.5, "the worker did not give its tasks the soft shutdown"
    print(f"p03: worker exited {took:.1f}s after SIGTERM (soft shutdown {SOFT_SHUTDOWN_S:.0f}s)")
    held = await db.fetch(
        "SELECT id FROM content_items WHERE job_id = $1 AND status = 'running'", job
    )
    assert held, "SIGTERM should have interrupted claimed items"

    fake.configure(latency_ms=50)
    replaced = time.monotonic()
    stack.content_worker(concurrency=2, settings=NO_RECONCILER)
    statuses = await db.wait_jobs([job], within=60, context=stack.logs)
    assert statuses[job] == "completed"
    resumed_in = time.monotonic() - replaced
    assert resumed_in < 60 < float(FAST_SETTINGS["BROKER_VISIBILITY_TIMEOUT_S"])
    print(f"p03: handed-back work completed {resumed_in:.1f}s after the new worker started")

    items = await db.items(job)
    assert {i["status"] for i in items} == {"succeeded"}
    assert [i["results"] for i in items] == [1] * len(items)
    requests = fake.requests()
    assert requests_after_save(items, requests) == []
    assert max(per_item(requests).values()) <= 2


async def test_p03_sigterm_lets_short_running_work_finish(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    stack.start(concurrency=2, settings=NO_RECONCILER)
    # Calls shorter than the soft shutdown: the items in flight are stored before exit.
    job, _ = await _terminate_mid_task(stack, db, fake, latency_ms=1000)
    requests = fake.requests()
    in_flight_at_term = {k for r in requests if (k := item_of(r)) is not None}
    items = {(i["goal"], i["concept_key"], i["kind"]): i for i in await db.items(job)}
    assert in_flight_at_term
    for key in in_flight_at_term:
        assert items[key]["status"] == "succeeded", (key, items[key])
        assert items[key]["results"] == 1

    stack.content_worker(concurrency=2, settings=NO_RECONCILER)
    statuses = await db.wait_jobs([job], within=60, context=stack.logs)
    assert statuses[job] == "completed"
    requests = fake.requests()
    assert requests_after_save(await db.items(job), requests) == []
    # Nothing was interrupted, so nothing was asked twice.
    assert set(per_item(requests).values()) == {1}
