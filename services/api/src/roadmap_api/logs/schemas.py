"""Bodies of the execution-log endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from roadmap_core.domain import LogCategory, LogLevel


class LogOut(BaseModel):
    event_id: uuid.UUID
    ts: datetime
    level: LogLevel
    category: LogCategory
    step: str | None = Field(description="the pipeline step or API action it belongs to")
    message: str
    concept_id: uuid.UUID | None
    duration_ms: float | None
    details: dict[str, Any] = Field(
        description="Free-form: structured context of the event, for people reading logs. Its"
        " keys depend on `category` and `step` and may change without notice (for `llm`:"
        " `model`, `prompt_tokens`, `completion_tokens`, `cost_usd`, `outcome`, `item_id`;"
        " for a failed step: `error_type`, `error`). Do not parse it for decisions: the"
        " roadmap, its items and the event stream carry the same facts as typed fields."
    )


class LogPage(BaseModel):
    items: list[LogOut]
    next_cursor: str | None
