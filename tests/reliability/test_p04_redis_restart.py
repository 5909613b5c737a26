"""Promise 4: Redis restarted empty mid-run → every queued/running job still completes.

Every message, progress stream and heartbeat is gone after the restart; PostgreSQL still
says what is queued and running, and the reconciler sends it again.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from roadmap_dev.fake_llm import FakeLLM
from roadmap_devservers.embedded import EmbeddedRedis
from tests.support.db import Db
from tests.support.llmlog import item_of, per_item, requests_after_save, wait_for_request
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow


async def test_p04_redis_restarted_empty_mid_run_every_job_completes(
    clean_state: str,
    db: Db,
    fake: FakeLLM,
    own_redis: EmbeddedRedis,
    stack_on: Callable[..., Stack],
) -> None:
    fake.configure(latency_ms=800)
    stack = stack_on(database_url=clean_state, redis_url=own_redis.url)
    stack.start(concurrency=2)
    client, _ = stack.new_user()
    jobs = [str(client.create_roadmap(**small_request()).id) for _ in range(3)]
    wait_for_request(fake, lambda r: item_of(r) is not None, timeout=60, what="for content")

    own_redis.restart(empty=True)
    before = await db.fetch(
        "SELECT status::text AS status, count(*) AS n FROM roadmap_jobs GROUP BY status"
    )
    assert any(r["status"] != "completed" for r in before), "restart came too late to matter"

    statuses = await db.wait_jobs(jobs, within=120, context=stack.logs)
    assert set(statuses.values()) == {"completed"}, statuses
    requests = fake.requests()
    for job in jobs:
        items = await db.items(job)
        assert {i["status"] for i in items} == {"succeeded"}
        assert [i["results"] for i in items] == [1] * len(items)
        assert requests_after_save(items, requests) == []
    assert max(per_item(requests).values()) <= 2
    # The services reconnected: the API still serves, and with a fresh queue behind it.
    assert client.get_roadmap(jobs[0]).status == "completed"
    assert client.create_roadmap(**small_request()).status == "queued"
