"""Events of a roadmap's progress and chat streams (Server-Sent Events), typed by their
``event:``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from roadmap_client.models import (
    CancelledEvent,
    ChatDeltaEvent,
    ChatMessageEvent,
    CompletedEvent,
    FailedEvent,
    ItemEvent,
    ReviewRequiredEvent,
    SnapshotEvent,
    StatusEvent,
    StepEvent,
)

EVENT_MODELS: dict[str, type[BaseModel]] = {
    "snapshot": SnapshotEvent,
    "status": StatusEvent,
    "step": StepEvent,
    "item": ItemEvent,
    "review_required": ReviewRequiredEvent,
    "completed": CompletedEvent,
    "failed": FailedEvent,
    "cancelled": CancelledEvent,
}
CHAT_EVENT_MODELS: dict[str, type[BaseModel]] = {
    "delta": ChatDeltaEvent,
    "message": ChatMessageEvent,
}
TERMINAL = frozenset({"completed", "failed", "cancelled"})

EventData = (
    SnapshotEvent
    | StatusEvent
    | StepEvent
    | ItemEvent
    | ReviewRequiredEvent
    | CompletedEvent
    | FailedEvent
    | CancelledEvent
    | ChatDeltaEvent
    | ChatMessageEvent
)


@dataclass(frozen=True)
class Event:
    """One event: ``type`` (``snapshot``, ``item``…), its stream ``id`` and its payload.

    ``data`` is the payload's model (``ItemEvent`` for ``item``…), or ``None`` for an event
    type this client does not know yet (its JSON is in ``raw`` either way).
    """

    type: str
    id: str | None
    data: EventData | None
    raw: dict[str, Any]

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL


def parse_event(
    event: str,
    data: str,
    event_id: str | None,
    models: dict[str, type[BaseModel]] = EVENT_MODELS,
) -> Event | None:
    """An SSE block as an ``Event`` (``None`` for pings and blocks without an event)."""
    if not event or event == "ping" or not data:
        return None
    try:
        raw = json.loads(data)
    except ValueError:
        raw = {"text": data}
    if not isinstance(raw, dict):
        raw = {"value": raw}
    model = models.get(event)
    parsed: Any = None
    if model is not None:
        try:
            parsed = model.model_validate(raw)
        except ValidationError:
            parsed = None
    return Event(type=event, id=event_id or None, data=parsed, raw=raw)
