"""Global LLM rate limit shared by every worker process through Redis.

Why our own Lua script rather than a library: the limit is two-dimensional
(requests *and* tokens per window) and must be checked and consumed atomically
for both, token costs are large numbers (a library's moving window such as
``limits`` stores one entry per unit of cost), and a reservation made from an
estimate before the call has to be corrected to the real usage afterwards.
A sliding-window log does all of this in two short scripts:

* ``acquire``: drop entries older than the window, then admit the request only if
  ``count < max_requests`` and ``tokens_in_window + cost <= max_tokens``;
  otherwise return how long until enough entries expire. Time comes from Redis
  (``TIME``), so clocks of different hosts do not matter.
* ``settle``: replace a reservation's estimated tokens by the actual usage.

Guarantee at the provider: a request reaches the provider a little after it was
admitted (the script's answer, the event loop, the connection; up to ~280 ms on a
loaded machine here). So admissions are counted over ``window_s + margin_s``
(``LLM_RATE_MARGIN_S``): as long as no request takes longer than the margin from
admission to arrival, every window of ``window_s`` seconds *at the provider* holds at
most ``rpm * window_s / 60`` requests and ``tpm * window_s / 60`` tokens — also across
the edge of a burst, which a log of exactly ``window_s`` repeats one window later while
the first burst's stragglers are still arriving. The price is throughput: at most
``window_s / (window_s + margin_s)`` of the limit (0.992 for 60 s and 0.5 s).
``window_s = 60`` is the literal "per minute"; a shorter window enforces the same rate
with smaller bursts. The keys share one hash tag so the scripts also run on Redis
Cluster.

Redis being away (restarting, loading its data) is waited out for ``outage_window_s``
(``INFRA_OUTAGE_WINDOW_S``) before the call fails: the request waits as it would for
capacity, and the item that makes it spends no attempt on the outage. A restart that
lost the keys starts a fresh window; redis-py loads the scripts again by itself.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass
from typing import Final, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from roadmap_core.llm.errors import LLMError, LLMErrorReason
from roadmap_core.outages import is_redis_outage, ride_out
from roadmap_core.settings import LLMSettings

DEFAULT_KEY_PREFIX: Final = "roadmap:llm:rate"

_ACQUIRE: Final = """
local window = tonumber(ARGV[1])
local max_req = tonumber(ARGV[2])
local max_tok = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local id = ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = now - window
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
if #expired > 0 then
  local freed = 0
  for i = 1, #expired, 500 do
    local chunk = {}
    for j = i, math.min(i + 499, #expired) do chunk[#chunk + 1] = expired[j] end
    local toks = redis.call('HMGET', KEYS[2], unpack(chunk))
    for _, v in ipairs(toks) do
      if v then freed = freed + tonumber(v) end
    end
    redis.call('HDEL', KEYS[2], unpack(chunk))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  redis.call('DECRBY', KEYS[3], freed)
end
local count = redis.call('ZCARD', KEYS[1])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used < 0 or count == 0 then
  used = 0
  redis.call('SET', KEYS[3], 0)
end
if cost > max_tok then cost = max_tok end
if count < max_req and used + cost <= max_tok then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HSET', KEYS[2], id, cost)
  redis.call('INCRBY', KEYS[3], cost)
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], window * 2) end
  return {1, 0, cost}
end
local wait = 0
if count >= max_req then
  local nth = redis.call('ZRANGE', KEYS[1], count - max_req, count - max_req, 'WITHSCORES')
  wait = tonumber(nth[2]) + window - now
end
if used + cost > max_tok then
  local need = used + cost - max_tok
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local freed = 0
  for i = 1, #entries, 2 do
    local v = redis.call('HGET', KEYS[2], entries[i])
    if v then freed = freed + tonumber(v) end
    if freed >= need then
      local w = tonumber(entries[i + 1]) + window - now
      if w > wait then wait = w end
      break
    end
  end
end
if wait < 1 then wait = 1 end
return {0, wait, cost}
"""

_SETTLE: Final = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return 0 end
local new = tonumber(ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], new)
redis.call('INCRBY', KEYS[3], new - tonumber(old))
return 1
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    tokens: int


class RateLimiter(Protocol):
    async def acquire(self, tokens: int, *, deadline: float | None = None) -> Reservation:
        """Wait until one request of ``tokens`` tokens may be sent; raise LLMError if too long
        (the limiter's own wait, or until ``deadline`` on ``time.monotonic()`` if sooner)."""
        ...

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Replace the reservation's estimate with what the call really used."""
        ...


@dataclass(frozen=True, slots=True)
class WindowLimits:
    window_s: float
    max_requests: int
    max_tokens: int
    # Admissions are counted over window_s + margin_s (see the module's docstring).
    margin_s: float = 0.0

    @classmethod
    def per_window(cls, rpm: int, tpm: int, window_s: float, margin_s: float = 0.0) -> WindowLimits:
        scale = window_s / 60.0
        return cls(
            window_s=window_s,
            max_requests=max(1, math.floor(rpm * scale)),
            max_tokens=max(1, math.floor(tpm * scale)),
            margin_s=margin_s,
        )

    @property
    def span_s(self) -> float:
        """How long an admission counts against the limits."""
        return self.window_s + self.margin_s


class RedisRateLimiter:
    """Sliding-window request and token limit shared through one Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        rpm: int,
        tpm: int,
        window_s: float = 60.0,
        margin_s: float = 0.0,
        max_wait_s: float = 60.0,
        outage_window_s: float = 0.0,
        key_prefix: str = DEFAULT_KEY_PREFIX,
    ) -> None:
        self.limits = WindowLimits.per_window(rpm, tpm, window_s, margin_s)
        self.max_wait_s = max_wait_s
        self.outage_window_s = outage_window_s
        tag = "{" + key_prefix + "}"
        self._keys = [f"{tag}:req", f"{tag}:tok", f"{tag}:sum"]
        self._acquire = redis.register_script(_ACQUIRE)
        self._settle = redis.register_script(_SETTLE)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._counter = 0
        self._token = f"{time.time_ns():x}-{self._rng.getrandbits(32):08x}"

    @classmethod
    def from_settings(
        cls, redis: Redis, settings: LLMSettings, *, key_prefix: str = DEFAULT_KEY_PREFIX
    ) -> RedisRateLimiter:
        return cls(
            redis,
            rpm=settings.llm_rpm,
            tpm=settings.llm_tpm,
            window_s=settings.llm_rate_window_s,
            margin_s=settings.llm_rate_margin_s,
            max_wait_s=settings.llm_rate_max_wait_s,
            outage_window_s=settings.infra_outage_window_s,
            key_prefix=key_prefix,
        )

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._token}-{self._counter}"

    async def acquire(self, tokens: int, *, deadline: float | None = None) -> Reservation:
        rid = self._next_id()
        own = time.monotonic() + self.max_wait_s
        deadline = own if deadline is None else min(deadline, own)
        window_ms = max(1, round(self.limits.span_s * 1000))
        args: list[int | str] = [
            window_ms,
            self.limits.max_requests,
            self.limits.max_tokens,
            max(1, int(tokens)),
            rid,
        ]
        while True:
            try:
                allowed, wait_ms, cost = await ride_out(
                    lambda: self._acquire(keys=self._keys, args=args),
                    window_s=self.outage_window_s,
                    is_outage=is_redis_outage,
                    what="the global LLM rate limiter (Redis)",
                )
            except (RedisError, OSError) as exc:
                raise LLMError(
                    LLMErrorReason.connection,
                    f"global rate limiter unavailable ({type(exc).__name__})",
                ) from None
            if int(allowed) == 1:
                return Reservation(rid, int(cost))
            wait_s = int(wait_ms) / 1000.0
            remaining = deadline - time.monotonic()
            if wait_s > remaining:
                raise LLMError(
                    LLMErrorReason.rate_limited,
                    f"global LLM rate limit: no capacity within {self.max_wait_s:g}s",
                    retry_after_s=round(wait_s, 3),
                )
            # Waiters woken by the same expiry race for the slot; a little jitter spreads them.
            await asyncio.sleep(wait_s + self._rng.uniform(0, min(0.05, wait_s * 0.1)))

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        if actual_tokens == reservation.tokens:
            return
        try:
            await self._settle(keys=self._keys, args=[reservation.id, max(0, int(actual_tokens))])
        except RedisError:
            # Keeping the estimate only makes the limiter stricter for one window.
            return


def estimate_tokens(text: str) -> int:
    """A cheap upper-leaning token estimate: ~4 ASCII chars per token, 1 per other char."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)
