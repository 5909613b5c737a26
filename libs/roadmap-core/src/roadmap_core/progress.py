"""Progress events: one bounded Redis Stream per job, read by the API's SSE endpoint."""

from __future__ import annotations

import json
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from redis.asyncio import Redis


class ProgressType(StrEnum):
    snapshot = "snapshot"
    status = "status"
    step = "step"
    item = "item"
    review_required = "review_required"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in {ProgressType.completed, ProgressType.failed, ProgressType.cancelled}


class ProgressEvent(BaseModel):
    type: ProgressType
    data: dict[str, Any] = Field(default_factory=dict)


def stream_key(job_id: uuid.UUID) -> str:
    return f"roadmap:job:{job_id}:events"


async def publish_progress(
    redis: Redis,
    job_id: uuid.UUID,
    event: ProgressEvent,
    *,
    maxlen: int,
    ttl_s: int,
) -> str:
    """Append ``event`` to the job's stream; returns the stream entry id (the SSE id)."""
    key = stream_key(job_id)
    fields = {"type": event.type.value, "data": json.dumps(event.data, default=str)}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(key, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        pipe.expire(key, ttl_s)
        entry_id, _ = await pipe.execute()
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def decode_entry(fields: dict[Any, Any]) -> ProgressEvent:
    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    decoded = {text(k): text(v) for k, v in fields.items()}
    return ProgressEvent(type=ProgressType(decoded["type"]), data=json.loads(decoded["data"]))
