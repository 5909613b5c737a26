"""Riding out a short outage of our own infrastructure (Redis, PostgreSQL).

A restart of Redis or PostgreSQL takes seconds. Work that needs one of them waits it out:
the operation is tried again with exponential backoff (and jitter, so waiting processes
do not return all at once) for at most ``INFRA_OUTAGE_WINDOW_S``, counted from its first
attempt, and only then fails with the last error. Nothing else changes meanwhile: an item
waiting for the LLM rate limiter does not spend an LLM attempt on the outage.

Backoff by ``tenacity`` (well kept, typed, asyncio-native); what counts as an outage is
decided by the caller (``is_redis_outage`` here, ``roadmap_db.outages`` for PostgreSQL):
a wrong query or a refused value is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_before_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0


def is_redis_outage(exc: BaseException) -> bool:
    """Redis is unreachable, restarting or still loading its data."""
    # BusyLoadingError (LOADING after a restart with data) is a ConnectionError.
    return isinstance(
        exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
    )


async def ride_out(
    operation: Callable[[], Awaitable[T]],
    *,
    window_s: float,
    is_outage: Callable[[BaseException], bool],
    what: str,
) -> T:
    """``await operation()``, again after each outage error until ``window_s`` has passed
    since the first attempt; then (or on any other error) the error is raised."""
    # The first attempt goes straight through: it is nearly every call (a limiter's script
    # per LLM request, a connection per checkout), and tenacity's bookkeeping around it
    # cost more CPU than the Redis round trip itself in a content worker's profile.
    started = time.monotonic()
    try:
        return await operation()
    except Exception as exc:
        if not is_outage(exc) or time.monotonic() - started + FIRST_DELAY_S > window_s:
            raise
        first_error = exc
    log.warning(
        "%s unavailable (%s); retrying within an outage window of %.0fs",
        what,
        type(first_error).__name__,
        window_s,
    )
    await asyncio.sleep(FIRST_DELAY_S * random.uniform(1.0, 1.2))  # noqa: S311 - jitter

    def note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s unavailable (%s); retrying, %.0fs into an outage window of %.0fs",
            what,
            type(error).__name__,
            time.monotonic() - started,
            window_s,
        )

    retrying: AsyncRetrying = AsyncRetrying(
        retry=retry_if_exception(is_outage),
        stop=stop_before_delay(max(0.0, window_s - (time.monotonic() - started))),
        wait=wait_exponential_jitter(multiplier=FIRST_DELAY_S, max=MAX_DELAY_S, jitter=0.2),
        before_sleep=note,
        reraise=True,
    )

    async def attempt() -> T:
        # A coroutine function: tenacity awaits only what it recognises as one, and
        # ``operation`` may be a lambda returning an awaitable.
        return await operation()

    result: T = await retrying(attempt)
    return result
