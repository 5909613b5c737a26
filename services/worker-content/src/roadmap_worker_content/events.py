"""Progress events for the job's Redis Stream (read by the API's SSE endpoint).

Events are a live view; Postgres stays the truth. A failed publish (Redis briefly away) is
logged and skipped rather than failing the work it reports: a client that missed events
re-reads the job's state on reconnect. Payloads are the models of ``roadmap_core.progress``
(the same classes the API's OpenAPI document describes).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import JobStatus, JobStep
from roadmap_core.progress import (
    CancelledEvent,
    CompletedEvent,
    EventData,
    FailedEvent,
    Progress,
    StatusEvent,
    StepEvent,
    publish_progress_events,
)
from roadmap_core.settings import RedisSettings
from roadmap_db.repositories.item_results import item_progress
from roadmap_worker_content.metrics import jobs_finished

log = logging.getLogger(__name__)


async def progress_now(session: AsyncSession, job_id: uuid.UUID) -> Progress:
    """The job's item counts in the shape every event and response uses."""
    return Progress.from_counts(await item_progress(session, job_id))


class EventPublisher:
    def __init__(self, redis: Redis, settings: RedisSettings) -> None:
        self._redis = redis
        self._maxlen = settings.progress_stream_maxlen
        self._ttl_s = settings.progress_stream_ttl_s

    async def publish(self, job_id: uuid.UUID, data: EventData) -> None:
        await self.publish_all(job_id, [data])

    async def publish_all(self, job_id: uuid.UUID, events: Sequence[EventData]) -> None:
        """Publish ``events`` in order, in one round trip."""
        for data in events:
            if isinstance(data, CompletedEvent | FailedEvent | CancelledEvent):
                status = (
                    data.status.value if isinstance(data, CompletedEvent) else data.event_type.value
                )
                jobs_finished().labels(status).inc()
        try:
            await publish_progress_events(
                self._redis, job_id, events, maxlen=self._maxlen, ttl_s=self._ttl_s
            )
        except (RedisError, OSError) as exc:
            kinds = ", ".join(str(data.event_type) for data in events)
            log.warning("progress events (%s) of job %s not published: %s", kinds, job_id, exc)

    async def status(self, job_id: uuid.UUID, status: JobStatus, step: JobStep) -> None:
        await self.publish(job_id, StatusEvent(status=status, step=step))

    async def step(self, job_id: uuid.UUID, step: JobStep) -> None:
        await self.publish(job_id, StepEvent(step=step))

    async def failed(self, job_id: uuid.UUID, error: str, progress: Progress) -> None:
        await self.publish(job_id, FailedEvent(error=error, progress=progress))

    async def cancelled(self, job_id: uuid.UUID, progress: Progress) -> None:
        await self.publish(job_id, CancelledEvent(progress=progress))
