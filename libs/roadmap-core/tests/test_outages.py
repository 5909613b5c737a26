"""ride_out: outage errors are retried with backoff within the window, others are not."""

from __future__ import annotations

import time

import pytest
import redis.exceptions

from roadmap_core.outages import is_redis_outage, ride_out


async def test_an_outage_shorter_than_the_window_is_ridden_out() -> None:
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise redis.exceptions.ConnectionError("connection refused")
        return "ok"

    assert await ride_out(flaky, window_s=10, is_outage=is_redis_outage, what="redis") == "ok"
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.2  # backed off


async def test_an_outage_longer_than_the_window_raises_the_last_error() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise redis.exceptions.TimeoutError("timed out")

    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        await ride_out(down, window_s=1.5, is_outage=is_redis_outage, what="redis")
    assert calls >= 2
    assert time.monotonic() - started <= 1.5


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def wrong() -> None:
        nonlocal calls
        calls += 1
        raise redis.exceptions.ResponseError("WRONGTYPE")

    with pytest.raises(redis.exceptions.ResponseError):
        await ride_out(wrong, window_s=10, is_outage=is_redis_outage, what="redis")
    assert calls == 1
