"""``reserve_work`` and the trigger that counts usage and settles reservations (0006)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select, update

from roadmap_core.domain import JobStatus
from roadmap_core.ids import new_id
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import RoadmapJob, TokenUsage, User
from roadmap_db.repositories.spending import Reservation, WorkLimits, reserve_work

REQUEST = {"goal": "Learn SQL", "level": "beginner", "weekly_hours": 4, "weeks": 6}
ROOMY = WorkLimits(max_active=10, tokens_per_day=10**9)


async def _user(db: ProcessDatabase, *, active: bool = True) -> uuid.UUID:
    user_id = new_id()
    async with db.transaction() as session:
        session.add(User(id=user_id, email=f"{user_id.hex}@example.com", password_hash="!",
                         is_active=active))  # fmt: skip
    return user_id


async def _job(
    db: ProcessDatabase, owner: uuid.UUID, status: JobStatus, tokens: int = 0
) -> uuid.UUID:
    job_id = new_id()
    async with db.transaction() as session:
        session.add(RoadmapJob(id=job_id, owner_id=owner, request=REQUEST, status=status,
                               prompt_tokens=tokens))  # fmt: skip
    return job_id


async def _reserve(
    db: ProcessDatabase, owner: uuid.UUID, job: uuid.UUID, tokens: int, limits: WorkLimits
) -> Reservation:
    async with db.transaction() as session:
        return await reserve_work(session, owner_id=owner, job_id=job, tokens=tokens, limits=limits)


async def _set(db: ProcessDatabase, job: uuid.UUID, **values: object) -> None:
    async with db.transaction() as session:
        await session.execute(update(RoadmapJob).where(RoadmapJob.id == job).values(**values))


async def _reserved(db: ProcessDatabase, job: uuid.UUID) -> int:
    async with db.transaction() as session:
        value = await session.scalar(select(RoadmapJob.tokens_reserved).where(RoadmapJob.id == job))
    return int(value or 0)


async def _usage(db: ProcessDatabase, owner: uuid.UUID) -> int:
    async with db.transaction() as session:
        total = await session.scalar(
            select(func.sum(TokenUsage.tokens)).where(TokenUsage.owner_id == owner)
        )
    return int(total or 0)


async def test_usage_counts_by_hour_and_the_reservation_settles_when_the_job_rests(
    db: ProcessDatabase,
) -> None:
    owner = await _user(db)
    job = await _job(db, owner, JobStatus.queued)
    assert (await _reserve(db, owner, job, 1000, ROOMY)).reserved
    await _set(db, job, status=JobStatus.planning, prompt_tokens=300)
    assert await _reserved(db, job) == 700
    assert await _usage(db, owner) == 300
    counted = await _reserve(db, owner, job, 0, ROOMY)
    assert (counted.tokens_used, counted.tokens_reserved) == (300, 700)
    await _set(db, job, status=JobStatus.awaiting_review, completion_tokens=50)
    assert await _reserved(db, job) == 0
    assert await _usage(db, owner) == 350
    # More work on the job reserves again; more on a working job adds to the reservation.
    await _set(db, job, status=JobStatus.generating)
    assert (await _reserve(db, owner, job, 400, ROOMY)).reserved
    assert (await _reserve(db, owner, job, 100, ROOMY)).reserved
    assert await _reserved(db, job) == 500
    await _set(db, job, prompt_tokens=1000)  # more than reserved: the reservation ends at 0
    assert await _reserved(db, job) == 0
    await _set(db, job, status=JobStatus.completed, prompt_tokens=1100)
    assert await _reserved(db, job) == 0
    assert await _usage(db, owner) == 1150


async def test_tokens_quota_admits_while_below_the_limit_and_counts_reservations(
    db: ProcessDatabase,
) -> None:
    owner = await _user(db)
    await _job(db, owner, JobStatus.completed, tokens=900)  # usage of a seeded job counts
    limits = WorkLimits(max_active=10, tokens_per_day=1000)
    first = await _job(db, owner, JobStatus.generating)
    second = await _job(db, owner, JobStatus.completed)
    assert (await _reserve(db, owner, first, 500, limits)).reserved  # 900 < 1000
    refused = await _reserve(db, owner, second, 1, limits)  # 900 + 500 reserved
    assert not refused.reserved
    assert (refused.tokens_used, refused.tokens_reserved) == (900, 500)
    assert refused.oldest_usage is not None
    assert await _reserved(db, second) == 0


async def test_active_work_counts_the_owners_other_unfinished_jobs(db: ProcessDatabase) -> None:
    owner = await _user(db)
    limits = WorkLimits(max_active=2, tokens_per_day=10**9)
    working = await _job(db, owner, JobStatus.generating)
    resting = await _job(db, owner, JobStatus.awaiting_review)
    done = await _job(db, owner, JobStatus.completed)
    # The job the work is for does not count against it.
    assert (await _reserve(db, owner, working, 10, limits)).reserved
    refused = await _reserve(db, owner, done, 10, limits)
    assert (refused.reserved, refused.active_work) == (False, 2)
    await _set(db, resting, status=JobStatus.cancelled)
    assert (await _reserve(db, owner, done, 10, limits)).reserved
    # Another owner's job is never reserved on.
    stranger = await _user(db)
    assert not (await _reserve(db, stranger, done, 10, ROOMY)).reserved


async def test_unknown_or_disabled_owners_reserve_nothing(db: ProcessDatabase) -> None:
    disabled = await _user(db, active=False)
    job = await _job(db, disabled, JobStatus.completed)
    for owner in (disabled, new_id()):
        outcome = await _reserve(db, owner, job, 10, ROOMY)
        assert (outcome.user_ok, outcome.reserved) == (False, False)
    assert await _reserved(db, job) == 0


async def test_concurrent_reservations_of_one_owner_pass_one_at_a_time(
    db: ProcessDatabase,
) -> None:
    owner = await _user(db)
    jobs = [await _job(db, owner, JobStatus.generating) for _ in range(8)]
    # Nothing used or reserved yet: room for exactly one reservation of 10 under 1 token.
    limits = WorkLimits(max_active=100, tokens_per_day=1)
    outcomes = await asyncio.gather(*(_reserve(db, owner, j, 10, limits) for j in jobs))
    assert sum(o.reserved for o in outcomes) == 1
    assert sum([await _reserved(db, j) for j in jobs]) == 10


async def test_reservations_on_finished_roadmaps_count_against_the_quota(
    db: ProcessDatabase,
) -> None:
    # Mentor chat turns reserve on a finished roadmap without moving its status. Before
    # 0011 their reservations were not counted: all eight passed under a quota with room
    # for one.
    owner = await _user(db)
    finished = [await _job(db, owner, JobStatus.completed) for _ in range(4)]
    limits = WorkLimits(max_active=100, tokens_per_day=1)
    outcomes = await asyncio.gather(
        *(_reserve(db, owner, finished[i % 4], 10, limits) for i in range(8))
    )
    assert sum(o.reserved for o in outcomes) == 1
    refused = [o for o in outcomes if not o.reserved]
    assert all(o.tokens_reserved == 10 for o in refused)
    # Once the answer gives back what it did not use, there is room again.
    for job in finished:
        await _set(db, job, tokens_reserved=0)
    assert (await _reserve(db, owner, finished[0], 10, limits)).reserved
