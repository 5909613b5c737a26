"""Issue 14, item 9: a Redis restart does not fail work, nor use up LLM attempts.

Every LLM request first passes the global rate limiter, whose state lives in Redis. With
Redis away, the limiter used to fail the call at once as a retryable error: an item spent
its three attempts within about 1.6 s and ended ``failed``. Now an outage of Redis (or
PostgreSQL) shorter than ``INFRA_OUTAGE_WINDOW_S`` is waited out with backoff, and the
call goes ahead once Redis answers again: no attempt is spent on it.

Redis (a private server) is stopped for 10 s while the content worker is part-way through
two roadmaps, then started again, with its data kept (append-only file) or empty. Each
task holds nine items, one LLM call at a time (``LLM_CONCURRENCY=1``), so items keep
reaching the limiter throughout the outage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from roadmap_dev.fake_llm import FakeLLM
from roadmap_devservers.embedded import EmbeddedRedis
from tests.support.db import Db
from tests.support.llmlog import content_requests, item_of, requests_after_save, wait_for_request
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0


@pytest.mark.parametrize("data", ["kept", "empty"])
async def test_i14_09_redis_stopped_10s_mid_run_no_item_fails_or_spends_an_attempt(
    data: str,
    clean_state: str,
    db: Db,
    fake: FakeLLM,
    own_redis: EmbeddedRedis,
    stack_on: Callable[..., Stack],
) -> None:
    if data == "kept":
        own_redis.persist = True
        own_redis.restart()  # from now on with an append-only file
    fake.configure(latency_ms=700)
    stack = stack_on(database_url=clean_state, redis_url=own_redis.url)
    stack.start(concurrency=2, CONCEPT_BATCH_SIZE="3", LLM_CONCURRENCY="1")
    client, _ = stack.new_user()
    jobs = [str(client.create_roadmap(**small_request()).id) for _ in range(2)]
    wait_for_request(fake, lambda r: item_of(r) is not None, timeout=60, what="for content")

    own_redis.stop()
    stopped_at = time.monotonic()
    pending = await db.fetchval(
        "SELECT count(*) FROM content_items WHERE status::text NOT IN ('succeeded', 'failed')"
    )
    assert pending >= 6, f"only {pending} items left when Redis stopped: too late to matter"
    await asyncio.sleep(OUTAGE_S)
    own_redis.restart(empty=data == "empty")
    back_at = time.monotonic()

    statuses = await db.wait_jobs(jobs, within=180, context=stack.logs)
    done_at = time.monotonic()
    items_of = {job: await db.items(job) for job in jobs}
    failed = [i for items in items_of.values() for i in items if i["status"] != "succeeded"]
    total = sum(len(items) for items in items_of.values())
    assert set(statuses.values()) == {"completed"}, (
        f"{statuses}: {len(failed)} of {total} items failed, e.g. {failed[0]['error']!r}"
        f" after {failed[0]['attempts']} attempts"
        if failed
        else statuses
    )
    requests = fake.requests()
    for items in items_of.values():
        assert [i["attempts"] for i in items] == [1] * len(items), items
        assert [i["results"] for i in items] == [1] * len(items)
        assert requests_after_save(items, requests) == []
    # Calls really did wait for Redis: some were made only after it came back.
    started = time.time() - (time.monotonic() - stopped_at)
    late = [r for r in content_requests(requests) if r["ts"] >= started + OUTAGE_S]
    assert late, "no content call waited for the outage"
    print(
        f"i14-09 ({data}): {pending} items open when Redis stopped for {OUTAGE_S:.0f}s;"
        f" {len(late)} content calls made after it was back; both jobs completed"
        f" {done_at - back_at:.1f}s after the restart, every item stored once, 1 attempt each"
    )
