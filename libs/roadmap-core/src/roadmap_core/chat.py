"""The mentor chat's shared vocabulary: message states, the events of a roadmap's chat
stream, and the bounds of a chat turn.

The chat worker publishes the events, the API validates what it reads back and sends it
as Server-Sent Events (``GET /api/v1/roadmaps/{id}/chat/events``), and the OpenAPI document
describes them with these classes. A stream entry holds ``type`` and ``data`` like the
progress stream (:mod:`roadmap_core.progress`), in its own bounded Redis Stream per roadmap.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

# A learner's message: what the API accepts (characters, after trimming).
MAX_MESSAGE_CHARS: Final = 4000


class ChatRole(StrEnum):
    user = "user"
    assistant = "assistant"


class ChatStatus(StrEnum):
    """A learner's message is ``done`` when stored; an answer goes ``pending`` (queued),
    ``streaming`` (its worker is writing it), then ``done`` or ``failed``."""

    pending = "pending"
    streaming = "streaming"
    done = "done"
    failed = "failed"


class ChatEventType(StrEnum):
    delta = "delta"
    message = "message"


class ChatMessageView(BaseModel):
    """One message of the conversation, as the API lists it and the ``message`` event ends
    an answer with."""

    id: uuid.UUID
    role: ChatRole
    status: ChatStatus
    content: str
    concept_id: uuid.UUID | None = Field(description="the concept the question was about")
    reply_to: uuid.UUID | None = Field(description="an answer's question")
    error: str | None = Field(description="why an answer failed")
    prompt_tokens: int = Field(ge=0, description="an answer's (0 for a question)")
    completion_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0, description="estimated from the model's list price")
    created_at: datetime
    completed_at: datetime | None = Field(description="when an answer ended")


class _ChatEvent(BaseModel):
    event_type: ClassVar[ChatEventType]


class ChatDeltaEvent(_ChatEvent):
    """The next piece of an answer being written (``index`` counts from 0 per answer)."""

    event_type = ChatEventType.delta
    message_id: uuid.UUID
    index: int = Field(ge=0)
    text: str


class ChatMessageEvent(_ChatEvent):
    """An answer ended: the whole message as stored (``done``, or ``failed`` with its error)."""

    event_type = ChatEventType.message
    message: ChatMessageView


ChatEventData = ChatDeltaEvent | ChatMessageEvent

CHAT_EVENT_MODELS: dict[ChatEventType, type[_ChatEvent]] = {
    ChatEventType.delta: ChatDeltaEvent,
    ChatEventType.message: ChatMessageEvent,
}


def chat_stream_key(job_id: uuid.UUID) -> str:
    return f"roadmap:job:{job_id}:chat"


async def publish_chat(
    redis: Redis, job_id: uuid.UUID, data: ChatEventData, *, maxlen: int, ttl_s: int
) -> str:
    """Append ``data`` to the roadmap's chat stream; returns the entry id (the SSE id)."""
    key = chat_stream_key(job_id)
    fields = {"type": data.event_type.value, "data": data.model_dump_json()}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(key, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        pipe.expire(key, ttl_s)
        entry_id, _ = await pipe.execute()
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_chat_entry(fields: Mapping[Any, Any]) -> ChatEventData:
    """A stream entry back into its model; raises ``ValueError`` for one that is not valid."""
    decoded = {_text(k): _text(v) for k, v in fields.items()}
    model = CHAT_EVENT_MODELS[ChatEventType(decoded["type"])]
    return cast(ChatEventData, model.model_validate_json(decoded["data"]))
