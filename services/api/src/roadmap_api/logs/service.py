"""A job's execution logs, oldest first, keyset-paginated."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api.errors import BadRequest, NotFound
from roadmap_api.logs.schemas import LogOut, LogPage
from roadmap_core.domain import LogLevel
from roadmap_core.logdetails import parse_stored
from roadmap_db.models import User
from roadmap_db.repositories import job_reads, logs
from roadmap_db.repositories.cursor import InvalidCursor


async def job_logs(
    session: AsyncSession,
    user: User,
    job_id: uuid.UUID,
    *,
    level: LogLevel | None,
    after: str | None,
    limit: int,
) -> LogPage:
    if not await job_reads.job_is_owned(session, job_id, user.id):
        raise NotFound("No such roadmap.")
    try:
        rows, next_cursor = await logs.page_job_logs(
            session, job_id, limit=limit, after=after, min_level=level
        )
    except (InvalidCursor, ValueError):
        raise BadRequest("Malformed cursor.") from None
    return LogPage(
        items=[
            LogOut(
                event_id=r.event_id,
                ts=r.ts,
                level=r.level,
                category=r.category,
                step=r.step,
                message=r.message,
                concept_id=r.concept_id,
                duration_ms=r.duration_ms,
                details=parse_stored(r.details),
            )
            for r in rows
        ],
        next_cursor=next_cursor,
    )
