"""The progress stream of one job as Server-Sent Events.

A snapshot from Postgres comes first, then the entries of the job's Redis Stream
(``roadmap_core.progress.stream_key``) in order. Each event's SSE id is its stream entry
id, so a client reconnecting with ``Last-Event-ID`` continues right after the last event it
saw. The stream position is read *before* the snapshot, so nothing that happens between
the two is missed (at worst an event repeats what the snapshot already shows).

Everything that can refuse a stream happens before its first byte: a malformed or
out-of-range ``Last-Event-ID`` (400), an unknown roadmap (404), a client that already saw
the end of a finished roadmap's stream (204, which tells an ``EventSource`` to stop
reconnecting), and the stream caps (429/503, ``stream_slots.py``). A finished roadmap's
stream never waits: it replays what is left and ends. A Redis error while streaming ends
the stream with a ``retry:`` hint, so the client reconnects (with ``Last-Event-ID``) later
instead of at once.

No database connection is held while streaming: the snapshot is read by the path function,
and an idle stream re-checks the job's status with a short session every
``SSE_RECHECK_S`` (so a job that ended without its terminal event still ends the stream).
Every stream, idle or not, also re-checks its user that often: it ends once the user is
disabled or has changed the password (which revokes the credentials it was opened with).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from roadmap_api.errors import BadRequest, NotFound
from roadmap_api.roadmaps.stream_slots import StreamLease
from roadmap_api.roadmaps.views import progress_of, usage_of
from roadmap_api.state import AppServices
from roadmap_core.domain import JobStatus
from roadmap_core.progress import (
    CancelledEvent,
    CompletedEvent,
    EventData,
    FailedEvent,
    FailedItem,
    Progress,
    ProgressType,
    ReviewState,
    SnapshotEvent,
    decode_entry,
    stream_key,
)
from roadmap_db.models import RoadmapJob, User
from roadmap_db.repositories import frameworks, job_lifecycle, job_reads

log = logging.getLogger("roadmap_api.sse")

_ENTRY_ID = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")
ORIGIN = "0-0"
# Every event tells the client to wait this long before reconnecting after a drop ...
RECONNECT_MS = 2000
# ... and a stream ended by a Redis error asks for longer: the server needs a moment.
BACKEND_RETRY_MS = 5000
READ_BATCH = 100
MAX_ENTRY_PART = 2**64 - 1
# Stream ids start with the Redis server's clock (ms). An id later than its clock by more
# than this (and past the stream's end) was never issued.
FUTURE_TOLERANCE_MS = 60_000

EntryId = tuple[int, int]


def parse_last_event_id(value: str | None) -> EntryId | None:
    """The stream position a client resumes after (``None``: none sent); 400 if malformed."""
    if value is None or value == "":
        return None
    match = _ENTRY_ID.match(value)
    if match is None:
        raise BadRequest("Last-Event-ID must be the id of an event of this stream (`<ms>-<seq>`).")
    position = (int(match.group(1)), int(match.group(2)))
    if max(position) > MAX_ENTRY_PART:
        raise BadRequest("Last-Event-ID is out of range.")
    return position


def parse_entry_id(value: str | None) -> EntryId | None:
    match = _ENTRY_ID.match(value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _id(position: EntryId) -> str:
    return f"{position[0]}-{position[1]}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class StreamState:
    first: EntryId | None
    last: EntryId | None
    now_ms: int


async def stream_state(redis: Redis, key: str) -> StreamState:
    """Ids of the first and last entries still in the stream, and the server's clock."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xrange(key, count=1)
        pipe.xrevrange(key, count=1)
        pipe.time()
        first, last, (seconds, micros) = await pipe.execute()
    return StreamState(
        first=parse_entry_id(_text(first[0][0])) if first else None,
        last=parse_entry_id(_text(last[0][0])) if last else None,
        now_ms=int(seconds) * 1000 + int(micros) // 1000,
    )


def terminal_event_of(status: JobStatus) -> ProgressType | None:
    return {
        JobStatus.completed: ProgressType.completed,
        JobStatus.partial_failure: ProgressType.completed,
        JobStatus.failed: ProgressType.failed,
        JobStatus.cancelled: ProgressType.cancelled,
    }.get(status)


async def terminal_data(
    session: AsyncSession, job_id: uuid.UUID, status: JobStatus, error: str | None
) -> EventData:
    """The terminal event of a job that ended, built from the database."""
    counts = (await job_reads.item_counts_by_job(session, [job_id]))[job_id]
    progress = progress_of(counts)
    if status in (JobStatus.completed, JobStatus.partial_failure):
        failed = await job_lifecycle.failed_items(session, job_id)
        return CompletedEvent(
            status=status,
            failed_items=[FailedItem.model_validate(f.as_dict()) for f in failed],
            progress=progress,
        )
    if status is JobStatus.failed:
        return FailedEvent(error=error, progress=progress)
    return CancelledEvent(progress=progress)


class NothingLeft(Exception):
    """The client saw the end of a finished roadmap's stream: answer 204."""


@dataclass(slots=True)
class StreamPlan:
    job_id: uuid.UUID
    cursor: str
    snapshot: SnapshotEvent | None
    # Set when the job had ended: the stream replays what is left after the cursor (without
    # waiting), then ends, with this event if the stream did not hold a terminal one.
    final: EventData | None
    # Where a finished stream stops replaying (the stream's last entry when planned).
    end: EntryId | None
    # The stream's slot (``stream_slots.py``), renewed while it streams.
    lease: StreamLease | None = None
    # Who opened it, re-checked every SSE_RECHECK_S.
    owner: StreamOwner | None = None


@dataclass(frozen=True, slots=True)
class StreamOwner:
    user_id: uuid.UUID
    token_version: int  # the user's when the stream opened; a password change moves it on


async def plan_stream(
    session: AsyncSession,
    services: AppServices,
    *,
    owner_id: uuid.UUID,
    job_id: uuid.UUID,
    last_event_id: str | None,
) -> StreamPlan:
    """Decide where to start; raises (400/404/503, or ``NothingLeft``) before any byte."""
    resume = parse_last_event_id(last_event_id)
    key = stream_key(job_id)
    state = await stream_state(services.redis, key)
    job = await job_reads.get_owned_job(session, job_id, owner_id)
    if job is None:
        raise NotFound("No such roadmap.")
    if (
        resume is not None
        and resume[0] > state.now_ms + FUTURE_TOLERANCE_MS
        and (state.last is None or resume > state.last)
    ):
        raise BadRequest("Last-Event-ID is out of range: no event of this stream has it.")
    status = JobStatus(job.status)
    final = None
    if terminal_event_of(status) is not None:
        final = await terminal_data(session, job.id, status, job.error)
        if resume == (0, 0):
            resume = None  # "from the start" of a finished roadmap: its snapshot and end
        if resume is not None and resume != (0, 0) and (state.last is None or resume >= state.last):
            raise NothingLeft
    gap = resume is None or (resume != (0, 0) and (state.first is None or state.first > resume))
    if not gap and resume is not None:
        return StreamPlan(job.id, _id(resume), None, final, state.last)
    snapshot = await _snapshot(session, job)
    if resume is not None:
        # After a gap: replay what the stream still holds after the client's last event
        # (the snapshot covers what was trimmed) ...
        cursor = _id(resume)
    elif state.last is not None:
        cursor = _id(state.last)
    elif final is not None:
        # ... and a finished roadmap whose stream is gone gets an id that, sent back as
        # Last-Event-ID, answers 204 instead of repeating the end forever.
        cursor = f"{state.now_ms}-0"
    else:
        cursor = ORIGIN
    if final is not None:
        # A finished roadmap after a gap: the snapshot and its end are all there is to say.
        return StreamPlan(job.id, _id(state.last) if state.last else cursor, snapshot, final, None)
    return StreamPlan(job.id, cursor, snapshot, None, None)


async def _snapshot(session: AsyncSession, job: RoadmapJob) -> SnapshotEvent:
    counts = (await job_reads.item_counts_by_job(session, [job.id]))[job.id]
    review = await frameworks.latest_review_round(session, job.id)
    return SnapshotEvent(
        id=job.id,
        status=JobStatus(job.status),
        current_step=job.current_step,
        title=job.title,
        error=job.error,
        progress=progress_of(counts),
        usage=usage_of(job),
        review=None
        if review is None
        else ReviewState(round=review.round, decision=review.decision, round_id=review.id),
        updated_at=job.updated_at,
    )


def _event(entry_id: str, data: EventData) -> ServerSentEvent:
    return ServerSentEvent(
        data=data.model_dump_json(),
        event=data.event_type.value,
        id=entry_id,
        retry=RECONNECT_MS,
    )


def _decode(entry_id: str, fields: Any) -> EventData | None:
    try:
        return decode_entry(fields).data
    except (ValidationError, ValueError, KeyError) as exc:
        # Written by an older or newer emitter: skip it (the snapshot on the next connect,
        # or the idle re-check, tells the client what it missed).
        log.warning("progress entry skipped", extra={"entry": entry_id, "error": str(exc)[:200]})
        return None


async def _read(redis: Redis, key: str, cursor: str, block_ms: int | None) -> list[tuple[str, Any]]:
    response = await redis.xread({key: cursor}, count=READ_BATCH, block=block_ms)
    if not response:
        return []
    # RESP3 answers a map {key: entries}; RESP2 a list of [key, entries].
    groups = response.values() if isinstance(response, dict) else (e for _, e in response)
    return [(_text(entry_id), fields) for entries in groups for entry_id, fields in entries]


async def _owner_may_follow(services: AppServices, owner: StreamOwner) -> bool:
    """Whether the user is still active and its credentials not revoked since the stream
    opened. A database outage keeps the stream going (it is checked again later)."""
    try:
        async with services.db.sessions() as session:
            user = await session.get(User, owner.user_id)
    except Exception as exc:
        log.warning("progress stream user check failed", extra={"error": type(exc).__name__})
        return True
    return user is not None and user.is_active and user.token_version == owner.token_version


async def _status_now(services: AppServices, job_id: uuid.UUID) -> EventData | None:
    """The terminal event if the job has ended (or is gone) by now, else ``None``."""
    async with services.db.sessions() as session:
        job = await session.get(RoadmapJob, job_id)
        if job is None:
            return CancelledEvent(
                progress=Progress(total=0, done=0, failed=0, pending=0, cancelled=0)
            )
        status = JobStatus(job.status)
        if job.deleted_at is not None and not status.is_terminal:
            status = JobStatus.cancelled
        if not status.is_terminal:
            return None
        return await terminal_data(session, job.id, status, job.error)


def _retry_hint(reason: str) -> ServerSentEvent:
    return ServerSentEvent(comment=reason, retry=BACKEND_RETRY_MS)


async def _replay_finished(
    services: AppServices, plan: StreamPlan, key: str
) -> AsyncIterator[ServerSentEvent]:
    """What a finished roadmap's stream still holds after the cursor, then its end."""
    cursor = plan.cursor
    while plan.end is not None:
        entries = await _read(services.stream_redis, key, cursor, None)
        for entry_id, fields in entries:
            cursor = entry_id
            data = _decode(entry_id, fields)
            if data is None:
                continue
            yield _event(entry_id, data)
            if data.event_type.is_terminal:
                return
        position = parse_entry_id(cursor)
        if not entries or (position is not None and position >= plan.end):
            break
    assert plan.final is not None
    yield _event(cursor, plan.final)


async def events(services: AppServices, plan: StreamPlan) -> AsyncIterator[ServerSentEvent]:
    settings = services.settings
    key = stream_key(plan.job_id)
    cursor = plan.cursor
    if plan.snapshot is not None:
        yield _event(cursor, plan.snapshot)
    try:
        if plan.final is not None:
            async for event in _replay_finished(services, plan, key):
                yield event
            return
        idle_since = owner_checked = time.monotonic()
        while True:
            if plan.lease is not None:
                await plan.lease.renew_if_due()
            entries = await _read(services.stream_redis, key, cursor, settings.sse_block_ms)
            for entry_id, fields in entries:
                cursor = entry_id
                data = _decode(entry_id, fields)
                if data is None:
                    continue
                yield _event(entry_id, data)
                if data.event_type.is_terminal:
                    return
            if (
                plan.owner is not None
                and time.monotonic() - owner_checked >= settings.sse_recheck_s
            ):
                owner_checked = time.monotonic()
                if not await _owner_may_follow(services, plan.owner):
                    return  # the client's reconnect gets 401
            if entries:
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since >= settings.sse_recheck_s:
                idle_since = time.monotonic()
                try:
                    ended = await _status_now(services, plan.job_id)
                except Exception as exc:  # database away: keep streaming, check again later
                    log.warning(
                        "progress stream recheck failed", extra={"error": type(exc).__name__}
                    )
                    continue
                if ended is not None:
                    yield _event(cursor, ended)
                    return
    except (RedisError, OSError) as exc:
        log.warning("progress stream read failed", extra={"error": type(exc).__name__})
        yield _retry_hint("progress unavailable; reconnect with Last-Event-ID")


class LeasedEventStream(EventSourceResponse):
    """An event stream that gives its slot back however it ends (even before it started)."""

    def __init__(
        self,
        content: AsyncIterator[ServerSentEvent],
        services: AppServices,
        lease: StreamLease | None,
    ) -> None:
        super().__init__(
            content,
            ping=services.settings.sse_ping_s,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                if self.lease is not None:
                    await self.lease.release()
            except (RedisError, OSError) as exc:
                log.warning("stream slot not released", extra={"error": type(exc).__name__})


class StreamResponse(LeasedEventStream):
    """A roadmap's progress stream."""

    def __init__(self, services: AppServices, plan: StreamPlan) -> None:
        super().__init__(events(services, plan), services, plan.lease)
