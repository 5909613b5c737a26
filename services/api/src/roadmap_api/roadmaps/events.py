"""The progress stream of one job as Server-Sent Events.

A snapshot from Postgres comes first, then the entries of the job's Redis Stream
(``roadmap_core.progress.stream_key``) in order. Each event's SSE id is its stream entry
id, so a client reconnecting with ``Last-Event-ID`` continues right after the last event it
saw. The stream position is read *before* the snapshot, so nothing that happens between
the two is missed (at worst an event repeats what the snapshot already shows).

No database connection is held while streaming: the snapshot is read by the path function,
and an idle stream re-checks the job's status with a short session every
``SSE_RECHECK_S`` (so a job that ended without its terminal event still ends the stream).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from roadmap_api.errors import NotFound
from roadmap_api.roadmaps.views import progress_of, usage_of
from roadmap_api.state import AppServices
from roadmap_core.domain import JobStatus
from roadmap_core.progress import ProgressType, decode_entry, stream_key
from roadmap_db.models import RoadmapJob
from roadmap_db.repositories import frameworks, job_reads

log = logging.getLogger("roadmap_api.sse")

_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
ORIGIN = "0-0"
RECONNECT_MS = 2000
READ_BATCH = 100


def parse_entry_id(value: str | None) -> tuple[int, int] | None:
    match = _ENTRY_ID.match(value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def stream_bounds(redis: Redis, key: str) -> tuple[str | None, str | None]:
    """Ids of the first and last entries still in the stream (``None`` when empty)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xrange(key, count=1)
        pipe.xrevrange(key, count=1)
        first, last = await pipe.execute()
    return (_text(first[0][0]) if first else None, _text(last[0][0]) if last else None)


def terminal_event_of(status: JobStatus) -> ProgressType | None:
    return {
        JobStatus.completed: ProgressType.completed,
        JobStatus.partial_failure: ProgressType.completed,
        JobStatus.failed: ProgressType.failed,
        JobStatus.cancelled: ProgressType.cancelled,
    }.get(status)


@dataclass(slots=True)
class StreamPlan:
    job_id: uuid.UUID
    cursor: str
    snapshot: dict[str, Any] | None
    # Set when the job had already ended at snapshot time: the stream ends after it.
    final: tuple[ProgressType, dict[str, Any]] | None


async def plan_stream(
    session: AsyncSession,
    services: AppServices,
    *,
    owner_id: uuid.UUID,
    job_id: uuid.UUID,
    last_event_id: str | None,
) -> StreamPlan:
    """Decide where to start; raises (404/503) before any byte is streamed."""
    first, last = await stream_bounds(services.redis, stream_key(job_id))
    job = await job_reads.get_owned_job(session, job_id, owner_id)
    if job is None:
        raise NotFound("No such roadmap.")
    resume = parse_entry_id(last_event_id)
    if resume is not None and not _gap(resume, first):
        return StreamPlan(job_id=job.id, cursor=last_event_id or ORIGIN, snapshot=None, final=None)
    counts = (await job_reads.item_counts_by_job(session, [job.id]))[job.id]
    review = await frameworks.latest_review_round(session, job.id)
    status = JobStatus(job.status)
    snapshot = {
        "id": str(job.id),
        "status": status.value,
        "current_step": job.current_step,
        "title": job.title,
        "error": job.error,
        "progress": progress_of(counts).model_dump(),
        "usage": usage_of(job).model_dump(),
        "review": None
        if review is None
        else {"round": review.round, "decision": review.decision, "round_id": str(review.id)},
        "updated_at": job.updated_at.isoformat(),
    }
    terminal = terminal_event_of(status)
    final = None
    if terminal is not None:
        final = (
            terminal,
            {"status": status.value, "error": job.error, "progress": snapshot["progress"]},
        )
    # After a gap, replay whatever the stream still holds after the client's last event: the
    # snapshot covers what was trimmed, and a retained terminal event must still arrive.
    cursor = last_event_id if resume is not None and last_event_id else (last or ORIGIN)
    return StreamPlan(job_id=job.id, cursor=cursor, snapshot=snapshot, final=final)


def _gap(resume: tuple[int, int], first: str | None) -> bool:
    """Whether entries after ``resume`` may be gone (trimmed, or the stream expired)."""
    if resume == (0, 0):
        return False
    first_id = parse_entry_id(first)
    return first_id is None or first_id > resume


def _event(kind: str, entry_id: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(data, default=str, separators=(",", ":")),
        event=kind,
        id=entry_id,
        retry=RECONNECT_MS,
    )


async def _entries(redis: Redis, key: str, cursor: str, block_ms: int) -> list[tuple[str, Any]]:
    response = await redis.xread({key: cursor}, count=READ_BATCH, block=block_ms)
    if not response:
        return []
    # RESP3 answers a map {key: entries}; RESP2 a list of [key, entries].
    groups = response.values() if isinstance(response, dict) else (e for _, e in response)
    return [(_text(entry_id), fields) for entries in groups for entry_id, fields in entries]


async def _status_now(
    services: AppServices, job_id: uuid.UUID
) -> tuple[JobStatus, str | None] | None:
    async with services.db.sessions() as session:
        job = await session.get(RoadmapJob, job_id)
        if job is None:
            return None
        if job.deleted_at is not None and not JobStatus(job.status).is_terminal:
            return JobStatus.cancelled, None
        return JobStatus(job.status), job.error


async def events(services: AppServices, plan: StreamPlan) -> AsyncIterator[ServerSentEvent]:
    settings = services.settings
    key = stream_key(plan.job_id)
    cursor = plan.cursor
    if plan.snapshot is not None:
        yield _event("snapshot", cursor, plan.snapshot)
    if plan.final is not None:
        kind, data = plan.final
        yield _event(kind.value, cursor, data)
        return
    idle_since = time.monotonic()
    while True:
        try:
            entries = await _entries(services.stream_redis, key, cursor, settings.sse_block_ms)
        except (RedisError, OSError) as exc:
            # The client reconnects with Last-Event-ID and resumes where it stopped.
            log.warning("progress stream read failed", extra={"error": type(exc).__name__})
            return
        for entry_id, fields in entries:
            cursor = entry_id
            event = decode_entry(fields)
            yield _event(event.type.value, entry_id, event.data)
            if event.type.is_terminal:
                return
        if entries:
            idle_since = time.monotonic()
            continue
        if time.monotonic() - idle_since >= settings.sse_recheck_s:
            idle_since = time.monotonic()
            try:
                now = await _status_now(services, plan.job_id)
            except Exception as exc:  # database away: keep streaming, check again later
                log.warning("progress stream recheck failed", extra={"error": type(exc).__name__})
                continue
            status, error = now if now is not None else (JobStatus.cancelled, None)
            terminal = terminal_event_of(status)
            if terminal is not None:
                yield _event(terminal.value, cursor, {"status": status.value, "error": error})
                return


def response(services: AppServices, plan: StreamPlan) -> EventSourceResponse:
    return EventSourceResponse(
        events(services, plan),
        ping=services.settings.sse_ping_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
