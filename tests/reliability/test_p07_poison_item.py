"""Promise 7: a poison item (the fake LLM kills the worker process for one concept) →
attempted at most N times (``LLM_TASK_MAX_ATTEMPTS``), then ``failed``; the rest completes."""

from __future__ import annotations

import pytest

from roadmap_dev.fake_llm import FakeLLM
from tests.support.db import Db
from tests.support.llmlog import item_of, per_item, requests_after_save
from tests.support.processes import wait_until
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

MAX_ATTEMPTS = 2


async def test_p07_poison_item_attempted_at_most_n_times_then_failed_rest_completes(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    stack.start(concurrency=2, LLM_TASK_MAX_ATTEMPTS=str(MAX_ATTEMPTS))
    worker = stack.content_workers()[0]
    client, _ = stack.new_user()
    # Stop at the review so the concepts are known before any content is generated.
    job = str(client.create_roadmap(**small_request(review=True)).id)
    await db.wait_jobs([job], {"awaiting_review"}, within=60, context=stack.logs)
    keys = [
        r["key"]
        for r in await db.fetch("SELECT key FROM concepts WHERE job_id = $1 ORDER BY position", job)
    ]
    assert len(keys) == 3
    poison = keys[1]
    fake.configure(
        rules=[{"fault": "kill", "match_prompt": f"- concept id: {poison}\n", "times": None}]
    )
    client.review(job, approve=True)

    statuses = await db.wait_jobs([job], within=150, context=stack.logs)
    assert statuses[job] == "partial_failure"

    items = await db.items(job)
    poisoned = [i for i in items if i["concept_key"] == poison]
    healthy = [i for i in items if i["concept_key"] != poison]
    assert {i["status"] for i in poisoned} == {"failed"}
    assert all(i["attempts"] <= MAX_ATTEMPTS for i in poisoned), poisoned
    assert all(i["error"] for i in poisoned)
    assert {i["status"] for i in healthy} == {"succeeded"}
    assert [i["results"] for i in healthy] == [1] * len(healthy)

    requests = fake.requests()
    kills = [r for r in requests if r["fault"] == "kill"]
    assert any(r.get("killed") for r in kills), "the fake never killed a worker"
    counts = per_item(requests)
    for item in poisoned:
        assert counts[(item["goal"], poison, item["kind"])] <= MAX_ATTEMPTS
    print(
        f"p07: poison requests {[counts[(i['goal'], poison, i['kind'])] for i in poisoned]}"
        f", kills {len(kills)}, attempts {[i['attempts'] for i in poisoned]}"
    )
    assert requests_after_save(items, requests) == []
    assert all(
        item_of(r) is None or r["concept_id"] == poison or r["fault"] is None for r in requests
    )
    # The worker survived its children being killed and still has a full pool.
    assert worker.running
    wait_until(lambda: len(worker.children()) == 2, timeout=30, what="a full pool")
