"""Bodies of the mentor-chat endpoints (the messages themselves: ``roadmap_core.chat``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from roadmap_core.chat import MAX_MESSAGE_CHARS, ChatMessageView
from roadmap_core.text import STORABLE


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS),
        STORABLE,
    ] = Field(description="the learner's question")
    concept_id: uuid.UUID | None = Field(
        default=None, description="a concept of this roadmap the question is about"
    )


class ChatLinks(BaseModel):
    messages: str
    events: str


class ChatAccepted(BaseModel):
    """The stored question; its answer streams on ``links.events``."""

    message: ChatMessageView
    answer_id: uuid.UUID = Field(description="id of the assistant message to come")
    last_event_id: str = Field(
        description="the chat stream's position before this answer: a stream opened with it"
        " as `Last-Event-ID` receives every event of the answer",
        pattern=r"^[0-9]+-[0-9]+$",
    )
    links: ChatLinks


class ChatPage(BaseModel):
    items: list[ChatMessageView] = Field(description="oldest first")
    has_more: bool = Field(description="older messages exist beyond `limit`")


def chat_links(job_id: uuid.UUID) -> ChatLinks:
    base = f"/api/v1/roadmaps/{job_id}/chat"
    return ChatLinks(messages=f"{base}/messages", events=f"{base}/events")
