"""Finishing a job: the last item to finish (or the reconciler) moves it to its final status."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import ItemStatus, LogCategory, LogLevel
from roadmap_core.logdetails import JobFinishedDetails
from roadmap_core.logship import emit
from roadmap_core.progress import CompletedEvent, FailedItem, Progress
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.item_results import item_progress
from roadmap_db.repositories.job_lifecycle import Finalized, finalize_job
from roadmap_worker_content.events import EventPublisher

OPEN = (ItemStatus.pending.value, ItemStatus.queued.value, ItemStatus.running.value)


def all_done(progress: dict[str, int]) -> bool:
    """No item of the job is waiting or running (counts from ``item_progress``)."""
    return not any(progress.get(status, 0) for status in OPEN)


async def finalize_in(
    session: AsyncSession, job_id: uuid.UUID
) -> tuple[Finalized, dict[str, int]] | None:
    """Finalise inside the caller's transaction; ``(outcome, counts)`` if it was this call."""
    done = await finalize_job(session, job_id)
    if done is None:
        return None
    return done, await item_progress(session, job_id)


async def announce(
    progress: EventPublisher, job_id: uuid.UUID, done: Finalized, counts: dict[str, int]
) -> None:
    """Log and publish a finalisation that committed."""
    failed = [FailedItem.model_validate(f.as_dict()) for f in done.failed_items]
    progress_now = Progress.from_counts(counts)
    emit(
        f"job finished: {done.status.value}",
        job_id=job_id,
        level=LogLevel.warning if failed else LogLevel.info,
        category=LogCategory.workflow,
        step="finalize",
        details=JobFinishedDetails(status=done.status, failed_items=failed, progress=progress_now),
    )
    await progress.publish(
        job_id,
        CompletedEvent(
            status=done.status,
            failed_items=failed,
            progress=progress_now,
        ),
    )


async def finalize_and_announce(
    db: ProcessDatabase, progress: EventPublisher, job_id: uuid.UUID
) -> Finalized | None:
    """Finalise the job if every item is done; publish ``completed`` when it was this call."""
    async with db.transaction() as session:
        result = await finalize_in(session, job_id)
    if result is None:
        return None
    await announce(progress, job_id, *result)
    return result[0]
