"""A cap on LLM requests in flight across every process and replica, shared through Redis.

Self-hosted OpenAI-compatible servers (vLLM, Ollama, TGI) limit how many requests they
serve at once rather than how many arrive per minute; ``LLM_CONCURRENCY`` bounds one
process only, so N replicas would send N times that. ``LLM_MAX_IN_FLIGHT`` bounds them
all together.

A counting semaphore in one sorted set: each holder is a member whose score is when its
lease runs out. ``acquire`` drops expired leases and takes a slot if fewer than the cap
are held, else the caller polls again (5 ms, growing to 100 ms, with jitter): one
request's latency is seconds, so a slot handed over up to 100 ms late costs a few per
cent at most, and no connection blocks on Redis. ``release`` removes the member. A
holder that dies without releasing frees its slot when the lease ends; the lease
outlasts one HTTP attempt (``LLM_TIMEOUT_S``), which is the longest a slot is held.
Waiters are not served in order: a request that waits longer than
``LLM_RATE_MAX_WAIT_S`` fails as ``rate_limited`` (retryable) like a rate wait.
Redis being away is waited out for ``INFRA_OUTAGE_WINDOW_S``, as by the rate limiter.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from roadmap_core.llm.errors import LLMError, LLMErrorReason
from roadmap_core.outages import is_redis_outage, ride_out

DEFAULT_KEY: Final = "{roadmap:llm:rate}:inflight"
POLL_FIRST_S: Final = 0.005
POLL_MAX_S: Final = 0.1

_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  return 1
end
return 0
"""


class RedisInFlightLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        limit: int,
        lease_s: float,
        max_wait_s: float = 60.0,
        outage_window_s: float = 0.0,
        key: str = DEFAULT_KEY,
    ) -> None:
        self.limit = limit
        self.lease_s = lease_s
        self.max_wait_s = max_wait_s
        self.outage_window_s = outage_window_s
        self._redis = redis
        self._key = key
        self._acquire = redis.register_script(_ACQUIRE)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._token = f"{time.time_ns():x}-{self._rng.getrandbits(32):08x}"
        self._counter = 0

    async def acquire(self) -> str:
        """A slot id once fewer than ``limit`` requests are in flight; LLMError if too long."""
        self._counter += 1
        slot = f"{self._token}-{self._counter}"
        args: list[int | str] = [self.limit, max(1, round(self.lease_s * 1000)), slot]
        deadline = time.monotonic() + self.max_wait_s
        pause = POLL_FIRST_S
        while True:
            try:
                taken = await ride_out(
                    lambda: self._acquire(keys=[self._key], args=args),
                    window_s=self.outage_window_s,
                    is_outage=is_redis_outage,
                    what="the global cap on LLM calls in flight (Redis)",
                )
            except (RedisError, OSError) as exc:
                raise LLMError(
                    LLMErrorReason.connection,
                    f"global in-flight limiter unavailable ({type(exc).__name__})",
                ) from None
            if int(taken) == 1:
                return slot
            if time.monotonic() + pause > deadline:
                raise LLMError(
                    LLMErrorReason.rate_limited,
                    f"{self.limit} LLM calls in flight: no slot within {self.max_wait_s:g}s",
                    retry_after_s=1.0,
                )
            await asyncio.sleep(pause * self._rng.uniform(0.5, 1.0))
            pause = min(POLL_MAX_S, pause * 1.5)

    async def release(self, slot: str) -> None:
        try:
            await self._redis.zrem(self._key, slot)
        except (RedisError, OSError):
            return  # the lease frees it
