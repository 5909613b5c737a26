"""Progress events the API itself publishes: the status changes a request made.

Published after the change committed, to the same stream (and with the same models) as the
content worker's events. A failed publish is logged and skipped: the change is stored, and
a client that missed the event sees it in the next snapshot (or the idle re-check).
"""

from __future__ import annotations

import logging
import uuid

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api.roadmaps.views import progress_of
from roadmap_api.state import AppServices
from roadmap_core.domain import JobStatus, JobStep
from roadmap_core.progress import CancelledEvent, EventData, StatusEvent, publish_progress
from roadmap_db.models import RoadmapJob
from roadmap_db.repositories import job_reads

log = logging.getLogger("roadmap_api.announce")


async def publish(services: AppServices, job_id: uuid.UUID, *events: EventData) -> None:
    settings = services.settings
    for data in events:
        try:
            await publish_progress(
                services.redis,
                job_id,
                data,
                maxlen=settings.progress_stream_maxlen,
                ttl_s=settings.progress_stream_ttl_s,
            )
        except (RedisError, OSError) as exc:
            log.warning(
                "progress event not published",
                extra={"job_id": str(job_id), "event": data.event_type.value,
                       "error": type(exc).__name__},
            )  # fmt: skip
            return


def status_changed(status: JobStatus, step: JobStep | str) -> StatusEvent:
    return StatusEvent(status=status, step=JobStep(step))


async def cancelled_events(session: AsyncSession, job: RoadmapJob) -> list[EventData]:
    """``status`` then the terminal ``cancelled``, with the progress after the cancel."""
    counts = (await job_reads.item_counts_by_job(session, [job.id]))[job.id]
    return [
        status_changed(JobStatus.cancelled, job.current_step),
        CancelledEvent(progress=progress_of(counts)),
    ]
