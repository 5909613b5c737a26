"""How many event streams may be open: per API process, and per user across every process.

A stream holds a Redis connection of its own pool while it waits for new entries, so the
number of open streams is what must be bounded, not the connections (a stream that waited
for a connection would start and then die with no events). Both caps are checked before
the stream starts:

- per process, ``SSE_MAX_STREAMS`` (an in-memory count; the streams' Redis pool is sized
  above it, so an admitted stream never waits for a connection) → 503;
- per user, ``SSE_MAX_STREAMS_PER_USER`` over all API processes: a sorted set in Redis of
  the user's open streams, each with a lease the stream renews while it runs (a process
  that dies leaves leases that simply expire) → 429.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis

from roadmap_api.errors import QuotaExceeded, ServiceUnavailable

# Seconds a refused client is told to wait before trying again.
USER_RETRY_AFTER_S = 10
PROCESS_RETRY_AFTER_S = 5
# Redis pool connections beyond the cap: short commands of the streams (bounds, leases)
# never wait behind a full pool.
POOL_HEADROOM = 8

# KEYS[1] the user's set; ARGV: now (ms), lease expiry (ms), limit, member, key ttl (ms).
# Expired leases are dropped first, so a crashed process cannot lock a user out for long.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


def user_key(user_id: uuid.UUID) -> str:
    return f"roadmap:sse:user:{user_id}"


def stream_pool_size(max_streams: int) -> int:
    return max_streams + POOL_HEADROOM


@dataclass(slots=True)
class StreamLease:
    """One admitted stream: renew it while streaming, release it when done."""

    slots: StreamSlots
    user_id: uuid.UUID
    member: str
    renewed_at: float = field(default_factory=time.monotonic)
    released: bool = False

    async def renew_if_due(self) -> None:
        if time.monotonic() - self.renewed_at >= self.slots.lease_s / 3:
            self.renewed_at = time.monotonic()
            expiry = _now_ms() + int(self.slots.lease_s * 1000)
            await self.slots.redis.zadd(user_key(self.user_id), {self.member: expiry}, xx=True)

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.slots.open_here -= 1
        # A lease that cannot be removed now (Redis away) expires on its own.
        await self.slots.redis.zrem(user_key(self.user_id), self.member)


def _now_ms() -> int:
    return int(time.time() * 1000)


class StreamSlots:
    def __init__(self, redis: Redis, *, max_streams: int, per_user: int, lease_s: float) -> None:
        self.redis = redis
        self.max_streams = max_streams
        self.per_user = per_user
        self.lease_s = lease_s
        self.open_here = 0
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self, user_id: uuid.UUID) -> StreamLease:
        """Admit one stream of ``user_id`` or raise 503 (process full) / 429 (user's cap)."""
        if self.open_here >= self.max_streams:
            raise ServiceUnavailable(
                "Too many event streams are open on this server; retry shortly or poll"
                " the roadmap instead.",
                retry_after_s=PROCESS_RETRY_AFTER_S,
            )
        self.open_here += 1
        member = uuid.uuid4().hex
        try:
            now = _now_ms()
            lease_ms = int(self.lease_s * 1000)
            admitted = await self._acquire(
                keys=[user_key(user_id)],
                args=[now, now + lease_ms, self.per_user, member, lease_ms],
            )
        except BaseException:
            self.open_here -= 1
            raise
        if not admitted:
            self.open_here -= 1
            raise QuotaExceeded(
                f"You have {self.per_user} event streams open (the limit); close one first.",
                retry_after_s=USER_RETRY_AFTER_S,
                quota="event_streams",
                limit=self.per_user,
            )
        return StreamLease(self, user_id, member)
