"""Promise 5: Redis down at ``POST /api/v1/roadmaps`` → 202 for committed rows only, all
delivered once Redis is back (the job row is the outbox; the reconciler sends it)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from roadmap_client import ApiError
from roadmap_dev.fake_llm import FakeLLM
from roadmap_devservers.embedded import EmbeddedRedis
from tests.support.db import Db
from tests.support.stack import FAST_SETTINGS, Stack, small_request

pytestmark = pytest.mark.slow

# ENQUEUE_TIMEOUT_S bounds the send; the rest is one INSERT and the answer.
POST_BOUND_S = float(FAST_SETTINGS["ENQUEUE_TIMEOUT_S"]) + 4


async def test_p05_redis_down_at_post_202_for_committed_rows_delivered_when_back(
    clean_state: str,
    db: Db,
    fake: FakeLLM,
    own_redis: EmbeddedRedis,
    stack_on: Callable[..., Stack],
) -> None:
    stack = stack_on(database_url=clean_state, redis_url=own_redis.url)
    stack.start(concurrency=2)
    client, _ = stack.new_user()  # logging in counts attempts in Redis: do it first

    own_redis.stop()
    accepted = []
    for _ in range(3):
        started = time.monotonic()
        answer = client.create_roadmap(**small_request())
        assert time.monotonic() - started < POST_BOUND_S
        assert answer.status == "queued"
        accepted.append(str(answer.id))
    # An invalid request is refused and leaves no row behind, Redis or not.
    with pytest.raises(ApiError) as refused:
        client.create_roadmap(**small_request(weeks=0))
    assert refused.value.status == 422

    rows = await db.fetch("SELECT id::text AS id, status::text AS status FROM roadmap_jobs")
    assert sorted(r["id"] for r in rows) == sorted(accepted)
    assert {r["status"] for r in rows} == {"queued"}
    assert fake.requests() == []  # nothing could reach a worker while Redis was down

    own_redis.start()
    statuses = await db.wait_jobs(accepted, within=90, context=stack.logs)
    assert set(statuses.values()) == {"completed"}, statuses
    for job in accepted:
        items = await db.items(job)
        assert [i["results"] for i in items] == [1] * len(items)
    plans = [r for r in fake.requests() if r["schema"] == "IntentAnalysis"]
    assert len(plans) == len(accepted)  # each delivered once
