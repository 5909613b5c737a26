"""``create_jobs``: a batch of submits in one statement keeps every quota exact."""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy import func, select

from roadmap_core.ids import new_id
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import RoadmapJob, User
from roadmap_db.repositories.job_actions import CreateOutcome, NewJob, QuotaLimits, create_jobs

REQUEST = {"goal": "Learn SQL", "level": "beginner", "weekly_hours": 4, "weeks": 6}
REQUEST_JSON = json.dumps(REQUEST)


async def users(db: ProcessDatabase, count: int, *, active: bool = True) -> list[uuid.UUID]:
    ids = [new_id() for _ in range(count)]
    async with db.transaction() as session:
        session.add_all(
            User(id=i, email=f"{i.hex}@example.com", password_hash="!", is_active=active)
            for i in ids
        )
    return ids


async def submit(db: ProcessDatabase, jobs: list[NewJob], limits: QuotaLimits) -> list[bool]:
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return [o.created for o in await create_jobs(autocommit, jobs, limits)]


async def jobs_of(db: ProcessDatabase, owner: uuid.UUID) -> int:
    async with db.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(RoadmapJob).where(RoadmapJob.owner_id == owner)
        )
    return int(count or 0)


async def test_one_owner_twice_in_a_batch_counts_the_first(db: ProcessDatabase) -> None:
    alice, bob = await users(db, 2)
    limits = QuotaLimits(max_active_jobs=2, jobs_per_day=10, tokens_per_day=10**9)
    batch = [NewJob(new_id(), owner, REQUEST_JSON, 0) for owner in (alice, bob, alice, alice, bob)]
    # Outcomes come back in the order of the batch, not the owners' lock order.
    assert await submit(db, batch, limits) == [True, True, True, False, True]
    assert await jobs_of(db, alice) == 2
    assert await jobs_of(db, bob) == 2


async def test_daily_quota_and_unknown_or_disabled_owners(db: ProcessDatabase) -> None:
    (carol,) = await users(db, 1)
    (dave,) = await users(db, 1, active=False)
    limits = QuotaLimits(max_active_jobs=10, jobs_per_day=1, tokens_per_day=10**9)
    batch = [NewJob(new_id(), o, REQUEST_JSON, 0) for o in (carol, dave, new_id(), carol)]
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        outcomes = await create_jobs(autocommit, batch, limits)
    assert [(o.user_ok, o.created) for o in outcomes] == [
        (True, True), (False, False), (False, False), (True, False)]  # fmt: skip
    assert outcomes[3].jobs_today == 1
    assert outcomes[3].oldest_today is not None


async def test_concurrent_batches_sharing_owners_neither_deadlock_nor_overrun(
    db: ProcessDatabase,
) -> None:
    owners = await users(db, 4)
    limits = QuotaLimits(max_active_jobs=3, jobs_per_day=100, tokens_per_day=10**9)
    # Each batch names the owners in a different order: locks are still taken in one order.
    batches = [
        [NewJob(new_id(), owners[(i * k) % 4], REQUEST_JSON, 0) for i in range(8)]
        for k in (1, 3, 5, 7)
    ]
    created = await asyncio.gather(*(submit(db, batch, limits) for batch in batches))
    assert sum(sum(c) for c in created) == 4 * 3
    for owner in owners:
        assert await jobs_of(db, owner) == 3


async def test_a_batch_decides_exactly_as_submitting_one_at_a_time(db: ProcessDatabase) -> None:
    """Twin owners with the same history: one twin's jobs go in one batch, the other's one
    by one (batches of one); every outcome must match."""
    import random

    rng = random.Random(7)
    batched = await users(db, 6)
    single = await users(db, 6)
    (disabled,) = await users(db, 1, active=False)
    async with db.transaction() as session:
        for b, s in zip(batched, single, strict=True):
            for _ in range(rng.randrange(0, 4)):  # some history: active or finished, tokens
                status = rng.choice(["queued", "generating", "completed", "failed"])
                tokens = rng.choice([0, 400, 900])
                for owner in (b, s):
                    session.add(RoadmapJob(id=new_id(), owner_id=owner, request=REQUEST,
                                           status=status, prompt_tokens=tokens))  # fmt: skip
    limits = QuotaLimits(max_active_jobs=3, jobs_per_day=4, tokens_per_day=1500)
    picks = [rng.randrange(0, 7) for _ in range(40)]
    reserve = [rng.choice([0, 300, 700]) for _ in picks]
    owners_b = [batched[i] if i < 6 else disabled for i in picks]
    owners_s = [single[i] if i < 6 else disabled for i in picks]

    def outcome(o: CreateOutcome) -> tuple[object, ...]:
        return (
            o.user_ok, o.active_jobs, o.jobs_today, o.tokens_used, o.tokens_reserved, o.created
        )  # fmt: skip

    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = await create_jobs(
            autocommit,
            [NewJob(new_id(), o, REQUEST_JSON, r) for o, r in zip(owners_b, reserve, strict=True)],
            limits,
        )
        expected = []
        for owner, tokens in zip(owners_s, reserve, strict=True):
            (one,) = await create_jobs(
                autocommit, [NewJob(new_id(), owner, REQUEST_JSON, tokens)], limits
            )
            expected.append(outcome(one))
    actual = [outcome(o) for o in got]
    assert actual == expected
    assert any(o.created for o in got)
    assert not all(o.created for o in got)
    # The reservations held back some submits that jobs alone would have let through.
    assert any(o.tokens_reserved and not o.created for o in got)
