"""Promise 1: a content-worker child SIGKILLed mid-task → the job completes."""

from __future__ import annotations

import os
import signal

import pytest

from roadmap_dev.fake_llm import FakeLLM
from tests.support.db import Db
from tests.support.llmlog import item_of, per_item, requests_after_save, wait_for_request
from tests.support.processes import wait_until
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow


async def test_p01_content_child_sigkilled_mid_task_job_completes(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    fake.configure(latency_ms=1500)  # every content call is in flight long enough to be hit
    stack.start(concurrency=2)
    worker = stack.content_workers()[0]
    client, _ = stack.new_user()
    job = client.create_roadmap(**small_request())

    in_flight = wait_for_request(
        fake,
        lambda r: item_of(r) is not None and r["pid"] in worker.children(),
        timeout=60,
        what="for content from a pool child",
    )
    victim = int(in_flight["pid"])
    os.kill(victim, signal.SIGKILL)
    killed_at_seq = max(r["seq"] for r in fake.requests())

    statuses = await db.wait_jobs([job.id], within=120, context=stack.logs)
    assert statuses[str(job.id)] == "completed"

    items = await db.items(job.id)
    assert len(items) == 9  # 3 concepts (MAX_CONCEPTS) x 3 kinds
    assert {i["status"] for i in items} == {"succeeded"}
    # Exactly one stored version per item: the redelivered task did not write a duplicate.
    assert [i["results"] for i in items] == [1] * len(items)
    assert [i["version"] for i in items] == [1] * len(items)

    requests = fake.requests()
    assert requests_after_save(items, requests) == []
    # The call the dead child was waiting for was made again; nothing was made a third time.
    lost = item_of(in_flight)
    assert any(r["seq"] > killed_at_seq and item_of(r) == lost for r in requests)
    assert max(per_item(requests).values()) <= 2
    # The pool replaced the dead child and the worker itself kept running.
    assert worker.running
    wait_until(
        lambda: victim not in worker.children() and len(worker.children()) == 2,
        timeout=20,
        what="the pool to replace the killed child",
    )
    assert "signal 9" in worker.log(200_000) or "SIGKILL" in worker.log(200_000)
