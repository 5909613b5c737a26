"""The global limiter against a real Redis (the ``redis_url`` fixture)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from roadmap_core.llm import (
    InFlightCap,
    LLMError,
    LLMErrorReason,
    RedisInFlightLimiter,
    RedisRateLimiter,
    WindowLimits,
)
from roadmap_devservers.embedded import EmbeddedRedis


def limiter(redis: Redis, **kw: float) -> RedisRateLimiter:
    params: dict[str, float] = {"rpm": 600, "tpm": 1_000_000, "window_s": 1.0, "max_wait_s": 5.0}
    params.update(kw)
    return RedisRateLimiter(
        redis,
        rpm=int(params["rpm"]),
        tpm=int(params["tpm"]),
        window_s=params["window_s"],
        max_wait_s=params["max_wait_s"],
        key_prefix=f"test:{uuid.uuid4()}",
    )


def test_limits_scale_with_the_window() -> None:
    assert WindowLimits.per_window(500, 2_000_000, 60) == WindowLimits(60, 500, 2_000_000)
    assert WindowLimits.per_window(600, 60_000, 1) == WindowLimits(1, 10, 1000)
    assert WindowLimits.per_window(10, 1000, 1).max_requests == 1  # never zero


async def test_requests_beyond_the_window_budget_wait_or_fail(redis: Redis) -> None:
    lim = limiter(redis, rpm=300, max_wait_s=0.05)  # 5 per 1 s window
    for _ in range(5):
        await lim.acquire(10)
    with pytest.raises(LLMError) as info:
        await lim.acquire(10)
    assert info.value.reason is LLMErrorReason.rate_limited
    assert info.value.retryable
    assert info.value.retry_after_s is not None
    assert 0 < info.value.retry_after_s <= 1.0


async def test_a_waiting_request_is_admitted_when_the_window_slides(redis: Redis) -> None:
    lim = limiter(redis, rpm=120)  # 2 per 1 s window
    started = time.monotonic()
    for _ in range(3):
        await lim.acquire(1)
    # The third had to wait for the first to leave the window.
    assert time.monotonic() - started >= 0.9


async def test_tokens_are_limited_and_settled_to_actual_usage(redis: Redis) -> None:
    lim = limiter(redis, tpm=600, max_wait_s=0.05)  # 10 tokens per 1 s window
    first = await lim.acquire(6)
    with pytest.raises(LLMError):
        await lim.acquire(6)
    await lim.settle(first, 2)
    await lim.acquire(6)  # 2 + 6 <= 10
    with pytest.raises(LLMError):
        await lim.acquire(3)


async def test_a_request_larger_than_the_budget_is_clamped_not_stuck(redis: Redis) -> None:
    lim = limiter(redis, tpm=600, max_wait_s=0.05)
    reservation = await lim.acquire(50_000)
    assert reservation.tokens == 10


async def test_two_limiters_on_one_redis_share_the_budget(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4()}"
    a, b = (
        RedisRateLimiter(redis, rpm=120, tpm=10**6, window_s=1.0, key_prefix=prefix)  # 2 / s
        for _ in range(2)
    )
    admitted: list[float] = []

    async def take(lim: RedisRateLimiter) -> None:
        await lim.acquire(1)
        admitted.append(time.monotonic())

    await asyncio.gather(*(take(a if i % 2 else b) for i in range(6)))
    admitted.sort()
    # 6 requests at 2 per window: two full windows of waiting.
    assert admitted[-1] - admitted[0] >= 1.9
    # Client-side times lag Redis's a little; a shorter window absorbs that jitter.
    for t in admitted:
        assert sum(1 for u in admitted if t <= u < t + 0.75) <= 2


async def test_an_unreachable_redis_is_a_retryable_connection_error() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(LLMError) as info:
            await RedisRateLimiter(dead, rpm=10, tpm=1000).acquire(1)
        assert info.value.reason is LLMErrorReason.connection
        assert info.value.retryable
    finally:
        await dead.aclose()


async def test_a_redis_restart_within_the_outage_window_is_waited_out(
    own_redis: EmbeddedRedis,
) -> None:
    redis = Redis.from_url(own_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    limiter = RedisRateLimiter(redis, rpm=10, tpm=1000, outage_window_s=20)
    try:
        await limiter.acquire(1)  # the scripts are loaded; the restart drops them
        own_redis.stop()
        waiting = asyncio.create_task(limiter.acquire(1))
        await asyncio.sleep(1.5)
        assert not waiting.done()
        own_redis.start()  # empty
        reservation = await asyncio.wait_for(waiting, 20)
        assert reservation.tokens == 1
    finally:
        await redis.aclose()


async def test_a_redis_away_for_longer_than_the_window_fails_the_call_as_connection() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    started = time.monotonic()
    try:
        with pytest.raises(LLMError) as info:
            await RedisRateLimiter(dead, rpm=10, tpm=1000, outage_window_s=2).acquire(1)
        assert info.value.reason is LLMErrorReason.connection
        assert 0.5 <= time.monotonic() - started <= 5
    finally:
        await dead.aclose()


async def test_admissions_count_over_the_window_plus_the_margin(redis: Redis) -> None:
    lim = RedisRateLimiter(
        redis, rpm=120, tpm=10**6, window_s=1.0, margin_s=0.5, max_wait_s=5.0,
        key_prefix=f"test:{uuid.uuid4()}",
    )  # fmt: skip  # 2 per 1 s window, counted over 1.5 s
    assert lim.limits.span_s == 1.5
    started = time.monotonic()
    for _ in range(3):
        await lim.acquire(1)
    # The third waited until the first had been admitted 1.5 s ago, not 1 s: a request
    # arriving up to 0.5 s after its admission still finds the provider's window free.
    assert time.monotonic() - started >= 1.4


async def test_the_in_flight_cap_holds_across_limiters_and_hands_slots_over(redis: Redis) -> None:
    key = f"test:{uuid.uuid4()}:inflight"
    a, b = (
        RedisInFlightLimiter(
            redis, caps=(InFlightCap(key, 2, "LLM_MAX_IN_FLIGHT"),), lease_s=30, max_wait_s=5
        )
        for _ in "ab"
    )
    held = [await a.acquire(), await b.acquire()]
    third = asyncio.create_task(a.acquire())
    await asyncio.sleep(0.3)
    assert not third.done()
    await b.release(held.pop())
    slot = await asyncio.wait_for(third, 2)
    assert await redis.zcard(key) == 2
    await a.release(slot)
    await a.release(held.pop())
    assert await redis.zcard(key) == 0


async def test_a_dead_holders_slot_comes_back_after_its_lease(redis: Redis) -> None:
    key = f"test:{uuid.uuid4()}:inflight"
    lim = RedisInFlightLimiter(
        redis, caps=(InFlightCap(key, 1, "LLM_MAX_IN_FLIGHT"),), lease_s=0.5, max_wait_s=3
    )
    await lim.acquire()  # never released: its process "died"
    started = time.monotonic()
    await lim.acquire()
    assert 0.3 <= time.monotonic() - started < 2.5


async def test_no_slot_within_the_wait_is_a_retryable_rate_limit(redis: Redis) -> None:
    key = f"test:{uuid.uuid4()}:inflight"
    lim = RedisInFlightLimiter(
        redis, caps=(InFlightCap(key, 1, "LLM_MAX_IN_FLIGHT"),), lease_s=30, max_wait_s=0.2
    )
    await lim.acquire()
    with pytest.raises(LLMError) as info:
        await lim.acquire()
    assert info.value.reason is LLMErrorReason.rate_limited
    assert info.value.retryable
