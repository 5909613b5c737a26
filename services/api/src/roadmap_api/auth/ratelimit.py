"""Fixed-window counters in Redis for login and registration throttling."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from roadmap_api.errors import TooManyRequests

_PREFIX = "roadmap:ratelimit:"


def limit_key(kind: str, *parts: str) -> str:
    # Hashed so emails and addresses never appear in Redis key names.
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{_PREFIX}{kind}:{digest}"


async def hit(redis: Redis, key: str, window_s: int) -> tuple[int, int]:
    """Count one event in the current window; returns (count, seconds left in the window)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=window_s, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = await pipe.execute()
    return int(count), int(ttl) if int(ttl) > 0 else window_s


async def enforce(redis: Redis, key: str, *, limit: int, window_s: int, what: str) -> None:
    """Count this attempt and refuse it with 429 once the window's limit is passed.

    The count comes first (one MULTI/EXEC), so concurrent attempts each see their own
    number: exactly ``limit`` of them pass, whatever the concurrency."""
    count, ttl = await hit(redis, key, window_s)
    if count > limit:
        raise TooManyRequests(f"Too many {what}; try again later.", retry_after_s=ttl)
