"""A roadmap's mentor chat as Server-Sent Events.

The chat worker appends ``delta`` and ``message`` events to the roadmap's chat stream
(``roadmap_core.chat``); this streams them in order, each with its stream entry id as SSE
id. Without ``Last-Event-ID`` a stream starts after the newest event (what comes next);
with it, right after that event (``POST …/chat/messages`` answers the position to resume
from, so a stream opened after the question still gets all of its answer). The machinery
is the progress stream's (``roadmaps/events.py``): the same id checks, stream caps and
lease, ping, idle re-checks of the user (and of the roadmap: a deleted one ends the
stream) and ``retry:`` hint when Redis fails. A chat never ends by itself: the stream
stays open for the next question.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import ServerSentEvent

from roadmap_api.errors import BadRequest, NotFound
from roadmap_api.roadmaps.events import (
    FUTURE_TOLERANCE_MS,
    ORIGIN,
    RECONNECT_MS,
    LeasedEventStream,
    StreamOwner,
    _owner_may_follow,
    _read,
    _retry_hint,
    parse_last_event_id,
    stream_state,
)
from roadmap_api.roadmaps.stream_slots import StreamLease
from roadmap_api.state import AppServices
from roadmap_core.chat import ChatEventData, chat_stream_key, decode_chat_entry
from roadmap_db.models import RoadmapJob
from roadmap_db.repositories import job_reads

log = logging.getLogger("roadmap_api.sse")


async def stream_position(redis: Redis, key: str) -> str:
    """The id of the stream's newest entry (``0-0`` when it has none)."""
    state = await stream_state(redis, key)
    return f"{state.last[0]}-{state.last[1]}" if state.last else ORIGIN


@dataclass(slots=True)
class ChatStreamPlan:
    job_id: uuid.UUID
    cursor: str
    owner: StreamOwner
    lease: StreamLease | None = None


async def plan_chat_stream(
    session: AsyncSession,
    services: AppServices,
    *,
    owner: StreamOwner,
    job_id: uuid.UUID,
    last_event_id: str | None,
) -> ChatStreamPlan:
    """Where the stream starts; raises (400/404) before any byte."""
    resume = parse_last_event_id(last_event_id)
    state = await stream_state(services.redis, chat_stream_key(job_id))
    if not await job_reads.job_is_owned(session, job_id, owner.user_id):
        raise NotFound("No such roadmap.")
    if resume is None:
        cursor = f"{state.last[0]}-{state.last[1]}" if state.last else ORIGIN
        return ChatStreamPlan(job_id, cursor, owner)
    if resume[0] > state.now_ms + FUTURE_TOLERANCE_MS and (
        state.last is None or resume > state.last
    ):
        raise BadRequest("Last-Event-ID is out of range: no event of this stream has it.")
    return ChatStreamPlan(job_id, f"{resume[0]}-{resume[1]}", owner)


def _event(entry_id: str, data: ChatEventData) -> ServerSentEvent:
    return ServerSentEvent(
        data=data.model_dump_json(), event=data.event_type.value, id=entry_id, retry=RECONNECT_MS
    )


async def _roadmap_gone(services: AppServices, job_id: uuid.UUID) -> bool:
    try:
        async with services.db.sessions() as session:
            job = await session.get(RoadmapJob, job_id)
    except Exception as exc:  # database away: keep streaming, check again later
        log.warning("chat stream recheck failed", extra={"error": type(exc).__name__})
        return False
    return job is None or job.deleted_at is not None


async def chat_events(
    services: AppServices, plan: ChatStreamPlan
) -> AsyncIterator[ServerSentEvent]:
    settings = services.settings
    key = chat_stream_key(plan.job_id)
    cursor = plan.cursor
    checked = time.monotonic()
    try:
        while True:
            if plan.lease is not None:
                await plan.lease.renew_if_due()
            for entry_id, fields in await _read(
                services.stream_redis, key, cursor, settings.sse_block_ms
            ):
                cursor = entry_id
                try:
                    data = decode_chat_entry(fields)
                except (ValidationError, ValueError, KeyError) as exc:
                    log.warning(
                        "chat entry skipped", extra={"entry": entry_id, "error": str(exc)[:200]}
                    )
                    continue
                yield _event(entry_id, data)
            if time.monotonic() - checked >= settings.sse_recheck_s:
                checked = time.monotonic()
                if not await _owner_may_follow(services, plan.owner):
                    return  # the client's reconnect gets 401
                if await _roadmap_gone(services, plan.job_id):
                    return  # its reconnect gets 404
    except (RedisError, OSError) as exc:
        log.warning("chat stream read failed", extra={"error": type(exc).__name__})
        yield _retry_hint("chat unavailable; reconnect with Last-Event-ID")


class ChatStreamResponse(LeasedEventStream):
    """A chat stream that gives its slot back however it ends."""

    def __init__(self, services: AppServices, plan: ChatStreamPlan) -> None:
        super().__init__(chat_events(services, plan), services, plan.lease)
