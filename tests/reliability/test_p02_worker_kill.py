"""Promise 2: the whole content worker SIGKILLed and restarted → running jobs complete
within the reconciler's interval (not the Redis visibility timeout)."""

from __future__ import annotations

import time

import pytest

from roadmap_dev.fake_llm import FakeLLM
from tests.support.db import Db
from tests.support.llmlog import item_of, per_item, requests_after_save, wait_for_request
from tests.support.stack import FAST_SETTINGS, Stack, small_request

pytestmark = pytest.mark.slow

# Lease + stale age + a few reconciler intervals + the remaining LLM work, with slack for a
# loaded 2-core machine: far below the visibility timeout the messages are stuck behind.
RECOVERY_BOUND_S = 60.0


async def test_p02_content_worker_sigkilled_and_restarted_jobs_complete_within_reconciler_interval(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    visibility_timeout = float(FAST_SETTINGS["BROKER_VISIBILITY_TIMEOUT_S"])
    assert visibility_timeout > 10 * RECOVERY_BOUND_S
    fake.configure(latency_ms=1500)
    stack.start(concurrency=2)
    worker = stack.content_workers()[0]
    client, _ = stack.new_user()
    jobs = [client.create_roadmap(**small_request()).id for _ in range(2)]

    # Kill while content calls are in flight: their messages are unacknowledged.
    wait_for_request(
        fake,
        lambda r: item_of(r) is not None and r["pid"] in worker.children(),
        timeout=60,
        what="for content from a pool child",
    )
    worker.kill()
    assert not worker.running
    running_before = await db.fetchval(
        "SELECT count(*) FROM content_items WHERE status = 'running'"
    )
    assert running_before > 0, "the kill should have left claimed items behind"

    restarted = time.monotonic()
    stack.content_worker(concurrency=2)
    statuses = await db.wait_jobs(jobs, within=RECOVERY_BOUND_S, context=stack.logs)
    recovered_in = time.monotonic() - restarted
    assert set(statuses.values()) == {"completed"}, statuses
    assert recovered_in < RECOVERY_BOUND_S < visibility_timeout
    print(
        f"p02: completed {recovered_in:.1f}s after the restart (visibility timeout {visibility_timeout:.0f}s)"
    )

    requests = fake.requests()
    for job in jobs:
        items = await db.items(job)
        assert {i["status"] for i in items} == {"succeeded"}
        assert [i["results"] for i in items] == [1] * len(items)
        assert requests_after_save(items, requests) == []
    # Each item was requested at most twice: once by the killed worker, once after.
    assert max(per_item(requests).values()) <= 2
