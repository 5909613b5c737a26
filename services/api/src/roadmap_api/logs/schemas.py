"""Bodies of the execution-log endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from roadmap_core.domain import LogCategory, LogLevel
from roadmap_core.logdetails import StoredLogDetails


class LogOut(BaseModel):
    event_id: uuid.UUID
    ts: datetime
    level: LogLevel
    category: LogCategory
    step: str | None = Field(description="the pipeline step or API action it belongs to")
    message: str
    concept_id: uuid.UUID | None
    duration_ms: float | None
    details: StoredLogDetails = Field(
        description="Structured context of the event, one shape per `kind` (new kinds may be"
        " added in a minor version: treat an unknown `kind` like `untyped`). `truncated`:"
        " details too large to keep; `untyped`: an event logged before its kind was declared."
    )


class LogPage(BaseModel):
    items: list[LogOut]
    next_cursor: str | None
