"""The logs worker's tasks: ``logs.write_batch`` and ``logs.retention_sweep``.

Messages are acknowledged only after the task returns (``acks_late``), i.e.
after the batch's transaction committed; a redelivered batch is harmless because
rows are keyed by ``event_id`` (``ON CONFLICT DO NOTHING``). A failed write is
retried by publishing a copy first (``Task.retry``), so no failure path acks a
batch that was not stored.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Celery, Task

from roadmap_core.celery_app import LOGS_HARD_TIME_LIMIT, LOGS_SOFT_TIME_LIMIT
from roadmap_core.contracts import RETENTION_SWEEP, WRITE_LOG_BATCH
from roadmap_worker_logs.retention import sweep
from roadmap_worker_logs.runtime import get_runtime
from roadmap_worker_logs.settings import LogsWorkerSettings
from roadmap_worker_logs.writer import parse_batch, write_events

log = logging.getLogger(__name__)

RETRY_BASE_DELAY_S = 0.5


def retry_delay(retries: int, max_delay: float) -> float:
    base: float = RETRY_BASE_DELAY_S * 2.0 ** min(retries, 20)
    return min(max_delay, base) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter


def register_tasks(app: Celery, settings: LogsWorkerSettings) -> None:
    @app.task(
        name=WRITE_LOG_BATCH.name,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=settings.logs_write_max_retries,
        soft_time_limit=LOGS_SOFT_TIME_LIMIT,
        time_limit=LOGS_HARD_TIME_LIMIT,
    )
    def write_batch(self: Task[Any, Any], payload: Any) -> int:
        events, invalid = parse_batch(payload)
        runtime = get_runtime(settings)
        try:
            return runtime.run(
                write_events(runtime.db, events, runtime.stats, invalid=invalid),
                settings.logs_write_timeout_s,
            )
        except Exception as exc:
            retries = self.request.retries
            if retries >= settings.logs_write_max_retries:
                log.error(
                    "giving up on a batch of %d log events after %d retries: %s: %s",
                    len(events),
                    retries,
                    type(exc).__name__,
                    exc,
                )
                raise
            delay = retry_delay(retries, settings.logs_write_retry_max_delay_s)
            log.warning(
                "writing a batch of %d log events failed (%s: %s); retry %d in %.1fs",
                len(events),
                type(exc).__name__,
                exc,
                retries + 1,
                delay,
            )
            raise self.retry(exc=exc, countdown=delay) from exc

    @app.task(
        name=RETENTION_SWEEP.name,
        acks_late=True,
        ignore_result=True,
        soft_time_limit=LOGS_SOFT_TIME_LIMIT,
        time_limit=LOGS_HARD_TIME_LIMIT,
    )
    def retention_sweep(payload: Any = None) -> int:
        runtime = get_runtime(settings)
        result = runtime.run(
            sweep(
                runtime.db,
                retention_days=settings.log_retention_days,
                chunk=settings.logs_retention_chunk,
                pause_s=settings.logs_retention_pause_s,
            ),
            LOGS_SOFT_TIME_LIMIT - 5,
        )
        return result.deleted
