"""Bodies of the admin endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class QueueOut(BaseModel):
    name: str
    depth: int
    oldest_age_s: float | None = Field(description="age of the oldest waiting message")


class WorkerOut(BaseModel):
    instance: str
    last_seen_s: float = Field(description="seconds since its last heartbeat")
    info: dict[str, Any] = Field(
        description="Free-form: what the worker reported in its last heartbeat (pid, pool,"
        " concurrency, loop lag…); the keys differ by worker type and version and are for"
        " operators, not programs."
    )


class QueuesOut(BaseModel):
    queues: list[QueueOut]
    workers: dict[str, list[WorkerOut]]
