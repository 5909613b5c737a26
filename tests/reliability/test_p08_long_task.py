"""Promise 8: a task running longer than usual is never executed twice in parallel.

Every LLM call takes 5 s while a claim's lease is 3 s, the reconciler looks every second
for expired leases and two worker processes compete for messages: only lease renewal and
the claims keep a second executor away.
"""

from __future__ import annotations

import pytest

from roadmap_dev.fake_llm import FakeLLM
from tests.support.db import Db
from tests.support.llmlog import PLANNING_SCHEMAS, per_item
from tests.support.stack import FAST_SETTINGS, Stack, small_request

pytestmark = pytest.mark.slow

LATENCY_S = 5.0


async def test_p08_long_task_never_executed_twice_in_parallel(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    assert float(FAST_SETTINGS["ITEM_LEASE_S"]) < LATENCY_S
    fake.configure(latency_ms=LATENCY_S * 1000)
    stack.start(content_workers=2, concurrency=2)
    client, _ = stack.new_user()
    jobs = [str(client.create_roadmap(**small_request()).id) for _ in range(2)]

    statuses = await db.wait_jobs(jobs, within=150, context=stack.logs)
    assert set(statuses.values()) == {"completed"}, statuses

    requests = fake.requests()
    # One call per item and per planning step: nobody ran the same work a second time.
    counts = per_item(requests)
    assert len(counts) == 2 * 9
    assert set(counts.values()) == {1}, counts
    for schema in PLANNING_SCHEMAS:
        goals = [r["goal"] for r in requests if r["schema"] == schema]
        assert len(goals) == len(set(goals)) == 2, (schema, goals)
    # Both workers took part, so the claims (not a lack of competition) kept it single.
    callers = {r["pid"] for r in requests}
    for worker in stack.content_workers():
        assert callers & set(worker.children()), f"worker {worker.pid} made no LLM call"
    for job in jobs:
        items = await db.items(job)
        assert [(i["attempts"], i["results"], i["version"]) for i in items] == [(1, 1, 1)] * 9
