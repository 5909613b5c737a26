"""Progress events for the job's Redis Stream (read by the API's SSE endpoint).

Events are a live view; Postgres stays the truth. A failed publish (Redis
briefly away) is logged and skipped rather than failing the work it reports:
a client that missed events re-reads the job's state on reconnect.

Event data by type:

- ``status``: ``{status, step}`` — the job changed status;
- ``step``: ``{step}`` — planning moved to another step;
- ``item``: ``{item_id, concept_id, concept_key, kind, status, version?, error?, progress}``
  where ``progress`` counts items by status plus ``total``;
- ``review_required``: ``{round_id, round, framework}``;
- ``completed``: ``{status: completed|partial_failure, failed_items: [...], progress}``;
- ``failed``: ``{error}``; ``cancelled``: ``{}``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from roadmap_core.domain import JobStatus, JobStep
from roadmap_core.progress import ProgressEvent, ProgressType, publish_progress
from roadmap_core.settings import RedisSettings

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, redis: Redis, settings: RedisSettings) -> None:
        self._redis = redis
        self._maxlen = settings.progress_stream_maxlen
        self._ttl_s = settings.progress_stream_ttl_s

    async def publish(self, job_id: uuid.UUID, type_: ProgressType, data: dict[str, Any]) -> None:
        try:
            await publish_progress(
                self._redis,
                job_id,
                ProgressEvent(type=type_, data=data),
                maxlen=self._maxlen,
                ttl_s=self._ttl_s,
            )
        except (RedisError, OSError) as exc:
            log.warning("progress event %s of job %s not published: %s", type_, job_id, exc)

    async def status(self, job_id: uuid.UUID, status: JobStatus, step: JobStep) -> None:
        await self.publish(job_id, ProgressType.status, {"status": status, "step": step})

    async def step(self, job_id: uuid.UUID, step: JobStep) -> None:
        await self.publish(job_id, ProgressType.step, {"step": step})

    async def failed(self, job_id: uuid.UUID, error: str) -> None:
        await self.publish(
            job_id, ProgressType.failed, {"status": JobStatus.failed, "error": error}
        )

    async def cancelled(self, job_id: uuid.UUID) -> None:
        await self.publish(job_id, ProgressType.cancelled, {"status": JobStatus.cancelled})
