"""The logs worker's settings: one object per process, read from the environment."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from roadmap_core.celery_app import LOGS_SOFT_TIME_LIMIT
from roadmap_core.heartbeat import HEARTBEAT_INTERVAL_S
from roadmap_core.settings import (
    DatabaseSettings,
    LogShipSettings,
    RedisSettings,
    WorkerMetricsSettings,
)

SERVICE_NAME = "roadmap-worker-logs"


class LogsWorkerSettings(DatabaseSettings, RedisSettings, LogShipSettings, WorkerMetricsSettings):
    # Next to the content worker's 9464, so both can run on one machine.
    metrics_port: int = Field(default=9465, ge=1, le=65535)
    # Own pool knobs so a DB_POOL_SIZE meant for the API does not inflate this
    # worker: its budget is replicas x concurrency x (pool + overflow).
    logs_db_pool_size: int = Field(default=2, ge=1, le=20)
    logs_db_max_overflow: int = Field(default=1, ge=0, le=20)
    logs_worker_concurrency: int = Field(default=2, ge=1, le=16)
    # Batches are short tasks: reserving a few per child hides the broker round trip
    # between them. Reserved messages stay unacked, so a crash loses none of them.
    logs_prefetch_multiplier: int = Field(default=4, ge=1, le=64)
    # One batch write must end well inside the task's soft time limit.
    logs_write_timeout_s: float = Field(default=30.0, gt=0, lt=LOGS_SOFT_TIME_LIMIT)
    # Task-level retries of a batch whose write failed (database down, timeout).
    logs_write_max_retries: int = Field(default=60, ge=0, le=1000)
    logs_write_retry_max_delay_s: float = Field(default=60.0, gt=0)
    # A batch held by a worker that died (SIGKILL, out of memory, lost host) goes back to
    # the queue after this long; the content queue's BROKER_VISIBILITY_TIMEOUT_S is an hour.
    # Redelivering a batch that is still being worked on costs a repeated write, never a
    # duplicate row (rows are keyed by event id).
    logs_visibility_timeout_s: int = Field(default=180, ge=10, le=3600)
    # 0 disables the in-process retention timer (the logs.retention_sweep task still works).
    logs_retention_interval_s: float = Field(default=3600.0, ge=0)
    logs_retention_chunk: int = Field(default=5000, ge=1, le=100_000)
    logs_retention_pause_s: float = Field(default=0.05, ge=0)
    logs_loop_stall_s: float = Field(default=1.0, gt=0)
    logs_watchdog_interval_s: float = Field(default=0.25, gt=0)
    logs_heartbeat_interval_s: float = Field(default=HEARTBEAT_INTERVAL_S, gt=0)

    @model_validator(mode="after")
    def _visibility_outlasts_a_write(self) -> Self:
        # A batch's retry waits up to the retry delay, reserved, then writes for up to the
        # write timeout: shorter, and every retry of a slow batch would come back twice.
        floor = self.logs_write_timeout_s + self.logs_write_retry_max_delay_s
        if self.logs_visibility_timeout_s <= floor:
            raise ValueError(
                f"LOGS_VISIBILITY_TIMEOUT_S ({self.logs_visibility_timeout_s}) must exceed"
                f" LOGS_WRITE_TIMEOUT_S + LOGS_WRITE_RETRY_MAX_DELAY_S ({floor:g})"
            )
        return self
