"""The API's side of jobs: submitting under quotas, locking one's own job, soft delete.

The other API transitions of docs/jobs.md (cancel, review, retry, regenerate) are in
``job_lifecycle``. Callers commit, and only then send the matching task: the job row is
the outbox, and ``enqueued_at`` tells the reconciler when to send again if a send is lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from roadmap_db.models import RoadmapJob

DAY_MS = 24 * 3600 * 1000


def uuid7_floor(unix_ms: int) -> uuid.UUID:
    """The smallest UUIDv7 of this millisecond: ids are time-ordered, so ``id >= floor``
    selects rows created since then through the (owner_id, id) index."""
    return uuid.UUID(int=(unix_ms << 80) | (0x7 << 76) | (0b10 << 62))


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    max_active_jobs: int
    jobs_per_day: int
    tokens_per_day: int


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """What ``create_jobs`` did for one job. ``created_at`` is set only when the row was
    inserted; the counts are those its quotas were checked against (see ``spending``)."""

    user_ok: bool
    active_jobs: int = 0
    jobs_today: int = 0
    tokens_used: int = 0
    tokens_reserved: int = 0
    oldest_today: datetime | None = None
    oldest_usage: datetime | None = None
    created_at: datetime | None = None

    @property
    def created(self) -> bool:
        return self.created_at is not None


@dataclass(frozen=True, slots=True)
class NewJob:
    job_id: uuid.UUID
    owner_id: uuid.UUID
    request: str  # the request as JSON text
    reserve_tokens: int  # estimate held against the daily token quota until the job rests
    # The caller's access token version (``users.token_version`` when it was issued); the
    # job is refused like an unknown user's if it is no longer the owner's. None: no token
    # to check (an API key, looked up in the database already).
    token_version: int | None = None


# An owner whose token a password change revoked is passed on as NULL, which the function
# answers like an unknown user (``user_ok`` false); this keeps the check in the statement,
# under the same snapshot, without another round trip.
_SUBMIT = (
    "SELECT job_id, user_ok, active_jobs, jobs_today, tokens_used, tokens_reserved,"
    " oldest_today, oldest_usage, created_at"
    " FROM roadmap_submit_jobs($1::uuid[], ARRAY("
    "SELECT CASE WHEN x.version IS NULL OR u.token_version = x.version THEN x.owner END"
    " FROM unnest($2::uuid[], $9::integer[]) WITH ORDINALITY AS x(owner, version, n)"
    " LEFT JOIN users u ON u.id = x.owner ORDER BY x.n"
    "), $3::jsonb[], $4::bigint[], $5, $6, $7, $8)"
)


async def create_jobs(
    conn: AsyncConnection, jobs: Sequence[NewJob], limits: QuotaLimits
) -> list[CreateOutcome]:
    """Insert each queued job whose owner is active and within every quota, with its
    reservation of tokens: one statement.

    ``roadmap_submit_jobs`` (migrations 0003-0005) locks each owner's row, then counts and
    inserts, so concurrent submits of one owner cannot overrun a quota, whether they share
    a batch or not; the token quota counts as ``spending.reserve_work`` does. ``conn`` must be in autocommit mode: the statement is one transaction
    (all of the batch is written, or none) and holds the owners' locks only that long. It
    runs on the driver connection directly, skipping SQLAlchemy's per-execution work: this
    is the API's hottest statement (see bench/enqueue.py). Outcomes come in ``jobs`` order.
    """
    raw = await conn.get_raw_connection()
    rows = await raw.driver_connection.fetch(  # type: ignore[union-attr]
        _SUBMIT,
        [job.job_id for job in jobs],
        [job.owner_id for job in jobs],
        [job.request for job in jobs],
        [job.reserve_tokens for job in jobs],
        uuid7_floor(int(time.time() * 1000) - DAY_MS),
        limits.max_active_jobs,
        limits.jobs_per_day,
        limits.tokens_per_day,
        [job.token_version for job in jobs],
    )
    by_job = {
        row["job_id"]: CreateOutcome(
            user_ok=bool(row["user_ok"]),
            active_jobs=int(row["active_jobs"]),
            jobs_today=int(row["jobs_today"]),
            tokens_used=int(row["tokens_used"]),
            tokens_reserved=int(row["tokens_reserved"]),
            oldest_today=row["oldest_today"],
            oldest_usage=row["oldest_usage"],
            created_at=row["created_at"],
        )
        for row in rows
    }
    return [by_job[job.job_id] for job in jobs]


async def lock_owned_job(
    session: AsyncSession, job_id: uuid.UUID, owner_id: uuid.UUID
) -> RoadmapJob | None:
    """The owner's (not deleted) job, locked for this transaction."""
    stmt = (
        select(RoadmapJob)
        .where(
            RoadmapJob.id == job_id,
            RoadmapJob.owner_id == owner_id,
            RoadmapJob.deleted_at.is_(None),
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_deleted(session: AsyncSession, job_id: uuid.UUID) -> None:
    """Soft delete: the row stays (the worker may still be finishing) but reads skip it."""
    await session.execute(
        update(RoadmapJob)
        .where(RoadmapJob.id == job_id, RoadmapJob.deleted_at.is_(None))
        .values(deleted_at=func.now(), updated_at=func.now())
    )
