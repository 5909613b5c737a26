"""Several caps on calls in flight at once (the fleet's and a replica's), against a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis

from roadmap_core.llm import (
    InFlightCap,
    LLMError,
    LLMErrorReason,
    RedisInFlightLimiter,
    inflight,
)


def caps(fleet: int, replica: int) -> tuple[InFlightCap, InFlightCap]:
    run = uuid.uuid4().hex
    return (
        InFlightCap(f"test:{run}:fleet", fleet, "LLM_MAX_IN_FLIGHT"),
        InFlightCap(f"test:{run}:replica", replica, "WORKER_LLM_SLOTS"),
    )


async def test_a_slot_is_taken_in_every_cap_or_in_none(redis: Redis) -> None:
    fleet, replica = caps(fleet=3, replica=1)
    child = RedisInFlightLimiter(redis, caps=(fleet, replica), lease_s=30, max_wait_s=0.2)
    other_replica = RedisInFlightLimiter(redis, caps=(fleet,), lease_s=30, max_wait_s=0.2)
    held = await child.acquire()
    assert await redis.zcard(fleet.key) == 1
    assert await redis.zcard(replica.key) == 1
    with pytest.raises(LLMError) as info:
        await child.acquire()  # the replica is full, the fleet is not
    assert info.value.reason is LLMErrorReason.rate_limited
    assert "WORKER_LLM_SLOTS" in str(info.value)
    # The refused request took nothing from the fleet: another replica gets both slots left.
    assert await redis.zcard(fleet.key) == 1
    await other_replica.acquire()
    await other_replica.acquire()
    with pytest.raises(LLMError) as info:
        await other_replica.acquire()
    assert "LLM_MAX_IN_FLIGHT" in str(info.value)
    await child.release(held)
    assert await redis.zcard(replica.key) == 0
    assert await redis.zcard(fleet.key) == 2


async def test_a_release_in_the_same_process_hands_the_slot_over_without_a_poll(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polls so far apart that only the release itself can wake the waiter in time.
    monkeypatch.setattr(inflight, "POLL_FIRST_S", 30.0)
    monkeypatch.setattr(inflight, "POLL_MAX_S", 30.0)
    _, replica = caps(fleet=1, replica=1)
    lim = RedisInFlightLimiter(redis, caps=(replica,), lease_s=30, max_wait_s=120)
    held = await lim.acquire()
    waiter = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await lim.release(held)
    await lim.release(await asyncio.wait_for(waiter, 5))


async def test_waiters_in_one_process_are_served_in_the_order_they_came(redis: Redis) -> None:
    _, replica = caps(fleet=1, replica=1)
    lim = RedisInFlightLimiter(redis, caps=(replica,), lease_s=30, max_wait_s=30)
    held = await lim.acquire()
    served: list[int] = []

    async def wait(n: int) -> None:
        slot = await lim.acquire()
        served.append(n)
        await asyncio.sleep(0.02)
        await lim.release(slot)

    waiters = []
    for n in range(5):
        waiters.append(asyncio.create_task(wait(n)))
        await asyncio.sleep(0.01)
    await lim.release(held)
    await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert served == [0, 1, 2, 3, 4]


async def test_a_waiter_behind_another_still_gives_up_after_the_wait(redis: Redis) -> None:
    _, replica = caps(fleet=1, replica=1)
    lim = RedisInFlightLimiter(redis, caps=(replica,), lease_s=30, max_wait_s=0.3)
    await lim.acquire()
    first, second = (asyncio.create_task(lim.acquire()) for _ in "ab")
    for task in (first, second):
        with pytest.raises(LLMError) as info:
            await asyncio.wait_for(task, 5)
        assert info.value.reason is LLMErrorReason.rate_limited


async def test_taking_the_same_slot_again_is_not_counted_twice(redis: Redis) -> None:
    # What ride_out does when the reply to a script that ran was lost: the retry sends the
    # same holder, which must find its slot taken, not the cap full of itself.
    _, replica = caps(fleet=1, replica=1)
    lim = RedisInFlightLimiter(redis, caps=(replica,), lease_s=30, max_wait_s=0.2)
    released = asyncio.Event()
    deadline = time.monotonic() + 0.2
    assert await lim._poll("holder-1", deadline, released) == "holder-1"
    assert await lim._poll("holder-1", deadline, released) == "holder-1"
    assert await redis.zcard(replica.key) == 1


async def test_a_cancelled_wait_leaves_no_slot_behind(redis: Redis) -> None:
    _, replica = caps(fleet=1, replica=1)
    lim = RedisInFlightLimiter(redis, caps=(replica,), lease_s=30, max_wait_s=30)
    held = await lim.acquire()
    waiter = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await lim.release(held)
    assert await redis.zcard(replica.key) == 0
    # The gate is free again: the next caller is served at once.
    await lim.release(await asyncio.wait_for(lim.acquire(), 2))
