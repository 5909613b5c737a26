"""Issue 14, item 4: every route that makes the LLM work is under the user's quotas.

Before, only ``POST /roadmaps`` checked them: regenerate, review (approve or feedback) and
retry spent past the daily token limit and made more roadmaps active than allowed. Now
each of them reserves its work through one check (``roadmap_api.quotas.reserve``) that
locks the owner, counts the tokens of the last 24 hours plus the estimates of work in
flight, and the owner's active roadmaps; the reservation settles (the real usage replaces
the estimate) when the work rests or ends, whoever ends it.

One user, three roadmaps in the three states a spending route starts from: ``completed``
(regenerate), ``awaiting_review`` (approve, feedback) and ``partial_failure`` (retry; the
fake refuses that roadmap's quizzes). Extra API processes on the same servers give the
same user tighter quotas.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from roadmap_client import ApiError, RoadmapClient, concepts_of
from roadmap_dev.fake_llm import FakeLLM
from tests.support.db import Db, wait_for
from tests.support.llmlog import wait_for_request
from tests.support.processes import ApiProcess
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

Outcome = tuple[int, str | None]


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        call()
    except ApiError as refused:
        return refused.status, refused.problem.quota
    return 202, None


async def _all_at_once(calls: list[Callable[[], Any]]) -> list[Outcome]:
    return list(await asyncio.gather(*(asyncio.to_thread(_outcome, c) for c in calls)))


async def test_i14_04_every_spending_route_is_under_the_quotas_atomically_and_settles(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    stack.start(concurrency=2)
    client, _ = stack.new_user()
    owner = client.me().id
    failing = small_request()
    fake.configure(
        rules=[
            {"fault": "refusal", "match_schema": "Quiz", "match_prompt": failing["goal"][-8:],
             "times": None}
        ]
    )  # fmt: skip
    done = str(client.create_roadmap(**small_request()).id)
    review = str(client.create_roadmap(**small_request(review=True)).id)
    partial = str(client.create_roadmap(**failing).id)
    await db.wait_jobs([done], {"completed"}, within=90, context=stack.logs)
    await db.wait_jobs([review], {"awaiting_review"}, within=90, context=stack.logs)
    await db.wait_jobs([partial], {"partial_failure"}, within=90, context=stack.logs)
    concept = concepts_of(client.get_roadmap(done))[0].id

    def quota_api(*, tokens_per_day: int, max_active: int = 5) -> ApiProcess:
        # Small pools: the PostgreSQL server may be shared, and a few connections suffice.
        return stack.extra_api(
            DB_POOL_SIZE="6",
            DB_POOL_PREWARM="1",
            QUOTA_TOKENS_PER_DAY=str(tokens_per_day),
            QUOTA_MAX_ACTIVE_JOBS=str(max_active),
        )

    def user_on(api: ApiProcess) -> RoadmapClient:
        return stack.client(token=client.token, api=api)

    def spending(on: ApiProcess) -> dict[str, Callable[[], Any]]:
        return {
            "regenerate": lambda: user_on(on).regenerate(done, concept, ["tutorial"]),
            "review with feedback": lambda: user_on(on).review(
                review, approve=False, feedback="fewer concepts"
            ),
            "approve": lambda: user_on(on).review(review, approve=True),
            "retry": lambda: user_on(on).retry(partial),
            "create": lambda: user_on(on).create_roadmap(**small_request()),
        }

    async def job_tokens() -> int:
        return int(
            await db.fetchval(
                "SELECT sum(prompt_tokens + completion_tokens) FROM roadmap_jobs"
                " WHERE owner_id = $1",
                owner,
            )
        )

    # 1. The day's tokens are used up: every route that spends refuses, and nothing moves.
    used = await job_tokens()
    spent = quota_api(tokens_per_day=used)
    requests = len(fake.requests())
    for route, call in spending(spent).items():
        assert _outcome(call) == (429, "tokens_per_day"), route
    await asyncio.sleep(2)  # work that slipped through would be asking the LLM by now
    assert len(fake.requests()) == requests
    states = {done: "completed", review: "awaiting_review", partial: "partial_failure"}
    assert {j: await db.job_status(j) for j in states} == states

    # 2. Room for one more piece of work: of five requests sent at once (each for another
    # roadmap), one passes.
    room = quota_api(tokens_per_day=used + 1, max_active=50)
    at_once = spending(room)
    del at_once["approve"]  # the same roadmap as the feedback: one of them would be a 409
    at_once["another create"] = at_once["create"]
    outcomes = await _all_at_once(list(at_once.values()))
    assert sorted(outcomes) == [(202, None)] + [(429, "tokens_per_day")] * 4, outcomes
    await db.wait_jobs(
        [done, partial], {"completed", "partial_failure"}, within=90, context=stack.logs
    )
    resting = {"awaiting_review", "completed", "partial_failure"}
    await db.wait_jobs([review], resting, within=90, context=stack.logs)
    ids = [
        r["id"] for r in await db.fetch("SELECT id FROM roadmap_jobs WHERE owner_id = $1", owner)
    ]
    await db.wait_jobs(ids, resting, within=90, context=stack.logs)

    async def settled() -> bool:
        return not await db.fetchval(
            "SELECT sum(tokens_reserved) FROM roadmap_jobs WHERE owner_id = $1", owner
        )

    await wait_for(settled, within=10, what="the reservations to settle")
    assert await job_tokens() > used  # the work that passed was paid for, and counts
    usage = await db.fetchval("SELECT sum(tokens) FROM token_usage WHERE owner_id = $1", owner)
    assert usage == await job_tokens()

    # 3. Active roadmaps: two at most. The review keeps one active; the worker is stopped,
    # so accepted work stays active. Regenerating and retrying at once: one passes.
    for worker in stack.content_workers():
        worker.stop()
    busy = quota_api(tokens_per_day=10**12, max_active=2)
    assert await db.job_status(review) == "awaiting_review"
    calls = [spending(busy)["regenerate"], spending(busy)["retry"]]
    outcomes = await _all_at_once(calls)
    assert sorted(outcomes) == [(202, None), (429, "active_jobs")], outcomes
    working = done if outcomes[0] == (202, None) else partial
    waiting = partial if working == done else done
    assert _outcome(calls[1] if working == done else calls[0]) == (429, "active_jobs")
    assert await db.job_status(working) == "generating"
    assert await db.job_status(waiting) in {"completed", "partial_failure"}

    # 4. A worker dies mid-call; another finishes the job through the reconciler, and the
    # reservation settles with it.
    reserved = await db.fetchval(
        "SELECT tokens_reserved FROM roadmap_jobs WHERE id = $1", uuid.UUID(working)
    )
    assert (reserved or 0) > 0
    fake.configure(latency_ms=1500)
    before = len(fake.requests())
    victim = stack.content_worker()
    goal = await db.fetchval(
        "SELECT request->>'goal' FROM roadmap_jobs WHERE id = $1", uuid.UUID(working)
    )
    wait_for_request(
        fake, lambda r: r["seq"] > before and r["goal"] == goal, timeout=60, what="for the work"
    )
    victim.kill()
    fake.configure(latency_ms=50)
    stack.content_worker()
    await db.wait_jobs([working], {"completed", "partial_failure"}, within=120, context=stack.logs)
    await wait_for(settled, within=10, what="the dead worker's reservation to settle")

    # 5. Cancelling active work settles its reservation too.
    fake.configure(latency_ms=3000)
    regenerated = spending(busy)["regenerate" if waiting == done else "retry"]
    assert _outcome(regenerated) == (202, None)
    reserved = "SELECT tokens_reserved FROM roadmap_jobs WHERE id = $1"
    assert await db.fetchval(reserved, uuid.UUID(waiting)) > 0
    client.cancel(waiting)
    assert await db.fetchval(reserved, uuid.UUID(waiting)) == 0
    fake.configure(latency_ms=50)
    usage = await db.fetchval("SELECT sum(tokens) FROM token_usage WHERE owner_id = $1", owner)
    ids = [
        r["id"] for r in await db.fetch("SELECT id FROM roadmap_jobs WHERE owner_id = $1", owner)
    ]
    await db.wait_jobs(ids, resting | {"cancelled"}, within=90, context=stack.logs)
    print(
        f"i14-04: {used} tokens used before; every spending route 429 at that limit; 1 of 5"
        f" concurrent requests passed with room for one; 1 of 2 concurrent regenerate/retry"
        f" passed at 2 active roadmaps; reservations settled after a worker kill and a"
        f" cancel; {usage} tokens counted = the jobs' totals"
    )
