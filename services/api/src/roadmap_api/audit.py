"""Execution-log events the API itself records (category ``api``), via the log emitter.

``emit`` only appends to an in-process buffer; a thread ships batches to the logs queue.
Messages and details name what happened, never credentials.
"""

from __future__ import annotations

import uuid

from roadmap_core.domain import LogCategory, LogLevel
from roadmap_core.logdetails import LogDetails
from roadmap_core.logship import emit


def job_event(
    message: str,
    job_id: uuid.UUID,
    details: LogDetails,
    *,
    step: str,
    concept_id: uuid.UUID | None = None,
    level: LogLevel = LogLevel.info,
) -> None:
    emit(
        message,
        job_id=job_id,
        concept_id=concept_id,
        level=level,
        category=LogCategory.api,
        step=step,
        details=details,
    )
