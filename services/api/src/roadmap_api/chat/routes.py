"""``/api/v1/roadmaps/{id}/chat``: ask the mentor, follow its answers, read the conversation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from sse_starlette import EventSourceResponse

from roadmap_api.auth.deps import CurrentUser
from roadmap_api.chat import events, service
from roadmap_api.chat.schemas import ChatAccepted, ChatMessageIn, ChatPage
from roadmap_api.db import ServicesDep, SessionDep
from roadmap_api.responses import AUTH_ERRORS, errors
from roadmap_api.roadmaps.events import StreamOwner

router = APIRouter(prefix="/api/v1/roadmaps/{roadmap_id}/chat", tags=["chat"])

ID_ERRORS = {**AUTH_ERRORS, **errors(404, 422)}


@router.post(
    "/messages",
    operation_id="chat_messages_create",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**ID_ERRORS, **errors(429)},
)
async def post_message(
    roadmap_id: uuid.UUID,
    body: ChatMessageIn,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> ChatAccepted:
    """Ask the roadmap's mentor. Answers at once with the stored question and the id of the
    answer to come; the answer streams on ``links.events`` (``delta`` events, then a
    ``message`` event with the whole answer) and is listed with the conversation once
    written. Counts against the daily token quota (429 when it is spent)."""
    return await service.post_message(session, services, user, roadmap_id, body)


@router.get("/messages", operation_id="chat_messages_list", responses=ID_ERRORS)
async def list_messages(
    roadmap_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ChatPage:
    """The conversation on this roadmap: the latest ``limit`` messages, oldest first
    (answers being written are listed ``pending``/``streaming``)."""
    return await service.list_messages(session, user, roadmap_id, limit)


@router.get(
    "/events",
    operation_id="chat_events_follow",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `delta` (the next piece of an answer), then"
            " `message` (the answer as stored) for every answer. Event ids are stream"
            " positions: reconnect with `Last-Event-ID` to resume.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **ID_ERRORS,
        **errors(400, 429, 503),
    },
)
async def follow_chat(
    roadmap_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    last_event_id: Annotated[
        str | None,
        Header(
            description="Resume right after this event (`<ms>-<seq>`: an event's `id:`, or"
            " `last_event_id` of `POST …/chat/messages`); without it the stream starts with"
            " the next event. Anything else answers 400."
        ),
    ] = None,
) -> Response:
    plan = await events.plan_chat_stream(
        session,
        services,
        owner=StreamOwner(user.id, user.token_version),
        job_id=roadmap_id,
        last_event_id=last_event_id,
    )
    plan.lease = await services.stream_slots.acquire(user.id)
    return events.ChatStreamResponse(services, plan)
