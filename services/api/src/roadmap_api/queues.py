"""What waits in the Celery queues (Redis lists) and which workers are alive."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from roadmap_core.broker_queues import oldest_age, queue_keys
from roadmap_core.contracts import QUEUES
from roadmap_core.heartbeat import WorkerType, seen_workers


async def depths(redis: Redis) -> dict[str, int]:
    async with redis.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            for key in queue_keys(queue):
                pipe.llen(key)
        lengths = iter(await pipe.execute())
    return {queue: sum(int(next(lengths)) for _ in queue_keys(queue)) for queue in QUEUES}


async def oldest_ages(redis: Redis, now: float | None = None) -> dict[str, float | None]:
    """Seconds since the oldest waiting message of each queue was sent (LPUSH adds at the
    head and workers take from the tail, so the oldest is at index -1)."""
    now = time.time() if now is None else now
    async with redis.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            for key in queue_keys(queue):
                pipe.lindex(key, -1)
        tails = iter(await pipe.execute())
    return {queue: oldest_age([next(tails) for _ in queue_keys(queue)], now) for queue in QUEUES}


async def workers(redis: Redis, now: float | None = None) -> dict[WorkerType, list[dict[str, Any]]]:
    now = time.time() if now is None else now
    seen = await seen_workers(redis)
    out: dict[WorkerType, list[dict[str, Any]]] = {}
    for worker_type, instances in seen.items():
        out[worker_type] = []
        for info in instances:
            info = dict(info)
            instance = str(info.pop("instance", ""))
            ts = info.pop("ts", None)
            age = max(0.0, now - float(ts)) if isinstance(ts, (int, float)) else None
            out[worker_type].append({"instance": instance, "last_seen_s": age, "info": info})
    return out
