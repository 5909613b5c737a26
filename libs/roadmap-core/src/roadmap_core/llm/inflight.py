"""Caps on LLM requests in flight shared through Redis: across the fleet, and across the
children of one worker replica.

Self-hosted OpenAI-compatible servers (vLLM, Ollama, TGI) limit how many requests they
serve at once rather than how many arrive per minute; ``LLM_CONCURRENCY`` bounds one
process only, so N replicas would send N times that. ``LLM_MAX_IN_FLIGHT`` bounds them
all together. A content-worker replica's children share ``WORKER_LLM_SLOTS`` the same
way, so that a child busy with a task of few calls (a plan: two in series) leaves its
share to its siblings instead of idling it.

Each cap is a counting semaphore in one sorted set: each holder is a member whose score
is when its lease runs out. ``acquire`` drops expired leases and takes a slot in every
cap at once (one script, one round trip) if each has room, else the caller polls again
(5 ms, growing to 25 ms, with jitter). In one process only the longest waiter polls; the
others queue behind it in order, and a release in the same process wakes the poller at
once, so a slot changes hands within the process without waiting for a poll. ``release``
removes the member from every cap. A holder that dies without releasing frees its slots
when the lease ends; the lease outlasts one HTTP attempt (``LLM_TIMEOUT_S``), which is the
longest a slot is held. A request that waits longer than ``LLM_RATE_MAX_WAIT_S`` fails as
``rate_limited`` (retryable) like a rate wait. Redis being away is waited out for
``INFRA_OUTAGE_WINDOW_S``, as by the rate limiter.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from roadmap_core.llm.errors import LLMError, LLMErrorReason
from roadmap_core.outages import is_redis_outage, ride_out

# The hash tag keeps every cap in the rate limiter's cluster slot: one script takes them all.
KEY_PREFIX: Final = "{roadmap:llm:rate}"
FLEET_KEY: Final = f"{KEY_PREFIX}:inflight"
POLL_FIRST_S: Final = 0.005
POLL_MAX_S: Final = 0.025

# ARGV: lease (ms), the holder's member, then one limit per key. Returns 0 once a slot is
# taken in every cap, else the (1-based) index of the first cap that is full.
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Already taken by this holder (a retry after the reply to the first try was lost).
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return 0
end
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
end
return 0
"""

_RELEASE: Final = """
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class InFlightCap:
    """At most ``limit`` requests in flight among the holders of ``key``."""

    key: str
    limit: int
    # For the error when no slot comes: which setting bounds it.
    setting: str


def fleet_cap(limit: int) -> InFlightCap:
    return InFlightCap(FLEET_KEY, limit, "LLM_MAX_IN_FLIGHT")


def replica_cap(replica: str, limit: int) -> InFlightCap:
    return InFlightCap(f"{KEY_PREFIX}:replica:{replica}", limit, "WORKER_LLM_SLOTS")


class RedisInFlightLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        caps: Sequence[InFlightCap],
        lease_s: float,
        max_wait_s: float = 60.0,
        outage_window_s: float = 0.0,
    ) -> None:
        if not caps:
            raise ValueError("an in-flight limiter needs at least one cap")
        self.caps = tuple(caps)
        self.lease_s = lease_s
        self.max_wait_s = max_wait_s
        self.outage_window_s = outage_window_s
        self._redis = redis
        self._keys = [c.key for c in self.caps]
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._token = f"{time.time_ns():x}-{self._rng.getrandbits(32):08x}"
        self._counter = 0
        # Built on first use, on the loop that uses the limiter.
        self._gate: asyncio.Lock | None = None
        self._released: asyncio.Event | None = None

    async def acquire(self) -> str:
        """A slot id once every cap has room; LLMError after ``max_wait_s`` without one."""
        self._counter += 1
        slot = f"{self._token}-{self._counter}"
        deadline = time.monotonic() + self.max_wait_s
        if self._gate is None or self._released is None:
            self._gate, self._released = asyncio.Lock(), asyncio.Event()
        try:
            async with asyncio.timeout(self.max_wait_s):
                await self._gate.acquire()
        except TimeoutError:
            raise self._no_slot(None) from None
        try:
            return await self._poll(slot, deadline, self._released)
        except asyncio.CancelledError:
            # Cancelled while the script may have run: give back what it took.
            await self.release(slot)
            raise
        finally:
            self._gate.release()

    async def _poll(self, slot: str, deadline: float, released: asyncio.Event) -> str:
        args: list[int | str] = [max(1, round(self.lease_s * 1000)), slot]
        args += [c.limit for c in self.caps]
        pause = POLL_FIRST_S
        while True:
            released.clear()
            try:
                full = await ride_out(
                    lambda: self._acquire(keys=self._keys, args=args),
                    window_s=self.outage_window_s,
                    is_outage=is_redis_outage,
                    what="the caps on LLM calls in flight (Redis)",
                )
            except (RedisError, OSError) as exc:
                raise LLMError(
                    LLMErrorReason.connection,
                    f"in-flight limiter unavailable ({type(exc).__name__})",
                ) from None
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancel that reached us inside the Redis client can be lost there (~7 %
                # of cancels during a wait): honour it (acquire() gives back a slot the
                # script took) rather than poll on until the deadline or return the slot.
                raise asyncio.CancelledError
            if int(full) == 0:
                return slot
            if time.monotonic() + pause > deadline:
                raise self._no_slot(self.caps[int(full) - 1])
            # A release in this process ends the wait at once; one elsewhere, the next poll.
            try:
                async with asyncio.timeout(pause * self._rng.uniform(0.5, 1.0)):
                    await released.wait()
            except TimeoutError:
                pass
            pause = min(POLL_MAX_S, pause * 1.5)

    def _no_slot(self, cap: InFlightCap | None) -> LLMError:
        # None: still behind another waiter of this process when the wait ran out.
        full = (
            f"{cap.limit} LLM calls in flight ({cap.setting})"
            if cap is not None
            else "LLM calls in flight at their cap ("
            + " / ".join(c.setting for c in self.caps)
            + ")"
        )
        return LLMError(
            LLMErrorReason.rate_limited,
            f"{full}: no slot within {self.max_wait_s:g}s",
            retry_after_s=1.0,
        )

    async def release(self, slot: str) -> None:
        try:
            await self._release(keys=self._keys, args=[slot])
        except (RedisError, OSError):
            return  # the lease frees it
        if self._released is not None:
            self._released.set()
