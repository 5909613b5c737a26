"""Worker liveness: each worker process refreshes a short-lived Redis key.

The API's ``/readyz`` and ``/api/v1/admin/queues`` read these keys to know
which worker types are alive without talking to Celery's remote control.
"""

from __future__ import annotations

import json
import socket
import time
from enum import StrEnum
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis

HEARTBEAT_TTL_S = 30
HEARTBEAT_INTERVAL_S = 10
_PREFIX = "roadmap:heartbeat:"


class WorkerType(StrEnum):
    content = "worker-content"
    logs = "worker-logs"


def heartbeat_key(worker_type: WorkerType, instance: str) -> str:
    return f"{_PREFIX}{worker_type.value}:{instance}"


def instance_name() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


def beat(redis: SyncRedis, worker_type: WorkerType, instance: str, **info: Any) -> None:
    """Record that ``instance`` is alive (called from a worker thread every interval)."""
    payload = json.dumps({"ts": time.time(), **info}, default=str)
    redis.set(heartbeat_key(worker_type, instance), payload, ex=HEARTBEAT_TTL_S)


async def seen_workers(redis: Redis) -> dict[WorkerType, list[dict[str, Any]]]:
    """Every live worker instance by type, with the info it last reported."""
    found: dict[WorkerType, list[dict[str, Any]]] = {t: [] for t in WorkerType}
    async for raw_key in redis.scan_iter(match=f"{_PREFIX}*", count=200):
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        type_name, _, instance = key[len(_PREFIX) :].partition(":")
        try:
            worker_type = WorkerType(type_name)
        except ValueError:
            continue
        value = await redis.get(key)
        if value is None:
            continue
        info = json.loads(value)
        found[worker_type].append({"instance": instance, **info})
    return found
