"""Bodies of the execution-log endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class LogOut(BaseModel):
    event_id: uuid.UUID
    ts: datetime
    level: str
    category: str
    step: str | None
    message: str
    concept_id: uuid.UUID | None
    duration_ms: float | None
    details: dict[str, Any]


class LogPage(BaseModel):
    items: list[LogOut]
    next_cursor: str | None
