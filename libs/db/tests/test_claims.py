from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, JobStep
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import Concept, ContentItem, Module, RoadmapJob, Stage, User
from roadmap_db.repositories.claims import (
    claim_items,
    claim_job,
    fail_exhausted_items,
    heartbeat_items,
    item_counts,
)
from roadmap_db.repositories.job_lifecycle import cancel_job, get_job_for_claims

LEASE = timedelta(minutes=5)


async def _job_with_items(
    db: ProcessDatabase, n_concepts: int = 2
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    async with db.transaction() as s:
        user = User(email=f"{uuid.uuid4().hex}@example.com", password_hash="h")
        s.add(user)
        await s.flush()
        job = RoadmapJob(owner_id=user.id, request={"goal": "learn sql"})
        s.add(job)
        await s.flush()
        stage = Stage(job_id=job.id, position=0, title="s")
        s.add(stage)
        await s.flush()
        module = Module(job_id=job.id, stage_id=stage.id, position=0, title="m")
        s.add(module)
        await s.flush()
        concept_ids = []
        for i in range(n_concepts):
            c = Concept(
                job_id=job.id,
                module_id=module.id,
                key=f"c{i}",
                position=i,
                title=f"c{i}",
                difficulty=1,
                estimated_hours=1.0,
            )
            s.add(c)
            await s.flush()
            concept_ids.append(c.id)
            for kind in ContentKind:
                s.add(
                    ContentItem(job_id=job.id, concept_id=c.id, kind=kind, status=ItemStatus.queued)
                )
        return job.id, concept_ids


async def test_two_concurrent_job_claimers_one_wins(db: ProcessDatabase) -> None:
    job_id, _ = await _job_with_items(db)

    async def claimer() -> bool:
        async with db.transaction() as s:
            job = await claim_job(
                s,
                job_id,
                from_statuses=[JobStatus.queued],
                to_status=JobStatus.planning,
                step=JobStep.intent_analysis,
                max_attempts=3,
                lease=LEASE,
            )
            await asyncio.sleep(0.05)  # hold the row lock while the other one waits
            return job is not None

    results = await asyncio.gather(claimer(), claimer())
    assert sorted(results) == [False, True]
    async with db.sessions() as s:
        job = await s.get(RoadmapJob, job_id)
        assert job is not None
        assert (job.status, job.attempts) == (JobStatus.planning, 1)


async def test_job_claim_takes_over_only_an_expired_lease_and_respects_attempts(
    db: ProcessDatabase,
) -> None:
    job_id, _ = await _job_with_items(db)
    kwargs = {
        "from_statuses": [JobStatus.queued],
        "to_status": JobStatus.planning,
        "step": JobStep.intent_analysis,
        "max_attempts": 2,
        "lease": LEASE,
    }
    async with db.transaction() as s:
        assert await claim_job(s, job_id, **kwargs) is not None  # type: ignore[arg-type]
    async with db.transaction() as s:
        assert await claim_job(s, job_id, **kwargs) is None  # type: ignore[arg-type]  # lease is fresh
        await s.execute(
            update(RoadmapJob).values(heartbeat_at=RoadmapJob.heartbeat_at - timedelta(hours=1))
        )
    async with db.transaction() as s:
        assert await claim_job(s, job_id, **kwargs) is not None  # type: ignore[arg-type]  # worker died
        await s.execute(
            update(RoadmapJob).values(heartbeat_at=RoadmapJob.heartbeat_at - timedelta(hours=1))
        )
    async with db.transaction() as s:
        assert await claim_job(s, job_id, **kwargs) is None  # type: ignore[arg-type]  # attempts used up


async def test_two_concurrent_item_claimers_split_without_overlap(db: ProcessDatabase) -> None:
    job_id, concept_ids = await _job_with_items(db, n_concepts=3)

    async def claimer() -> set[uuid.UUID]:
        async with db.transaction() as s:
            items = await claim_items(s, job_id, concept_ids, max_attempts=3, lease=LEASE)
            await asyncio.sleep(0.05)
            return {i.id for i in items}

    a, b = await asyncio.gather(claimer(), claimer())
    assert not a & b
    assert len(a | b) == 9
    async with db.sessions() as s:
        assert (await item_counts(s, job_id))[ItemStatus.running] == 9


async def test_succeeded_items_are_never_reclaimed_and_exhausted_ones_fail(
    db: ProcessDatabase,
) -> None:
    job_id, concept_ids = await _job_with_items(db, n_concepts=1)
    async with db.transaction() as s:
        items = await claim_items(s, job_id, concept_ids, max_attempts=1, lease=LEASE)
        tutorial = next(i for i in items if i.kind is ContentKind.tutorial)
        await s.execute(
            update(ContentItem)
            .where(ContentItem.id == tutorial.id)
            .values(status=ItemStatus.succeeded)
        )
        # The other two "crashed": their lease expired.
        await s.execute(
            update(ContentItem)
            .where(ContentItem.status == ItemStatus.running)
            .values(claimed_at=ContentItem.claimed_at - timedelta(hours=1))
        )
    async with db.transaction() as s:
        assert await claim_items(s, job_id, concept_ids, max_attempts=1, lease=LEASE) == []
        failed = await fail_exhausted_items(s, job_id, max_attempts=1, lease=LEASE)
    assert {i.kind for i in failed} == {ContentKind.resources, ContentKind.quiz}
    async with db.sessions() as s:
        counts = await item_counts(s, job_id)
    assert (counts[ItemStatus.succeeded], counts[ItemStatus.failed]) == (1, 2)


async def _claim_all(db: ProcessDatabase, job_id: uuid.UUID, concepts: list[uuid.UUID]) -> int:
    """A worker's claim: the job row first, then the items (generation.generate)."""
    async with db.transaction() as s:
        job = await get_job_for_claims(s, job_id)
        if job is None or job.status is not JobStatus.generating:
            return 0
        items = await claim_items(
            s, job_id, concepts, max_attempts=3, lease=LEASE, token="t", count_attempt=False
        )
        return len(items)


async def _generating(db: ProcessDatabase, job_id: uuid.UUID) -> None:
    async with db.transaction() as s:
        await s.execute(
            update(RoadmapJob).where(RoadmapJob.id == job_id).values(status=JobStatus.generating)
        )


async def test_item_claims_wait_for_a_cancel_that_holds_the_job(db: ProcessDatabase) -> None:
    # The API's cancel locks the job row, then updates the job's items. A claim that took
    # items before the job row could hold some while the cancel held others: a deadlock.
    job_id, concepts = await _job_with_items(db)
    await _generating(db, job_id)
    async with db.transaction() as cancel:
        await cancel.execute(select(RoadmapJob).where(RoadmapJob.id == job_id).with_for_update())
        claim = asyncio.create_task(_claim_all(db, job_id, concepts))
        await asyncio.sleep(0.3)
        assert not claim.done(), "the claim went ahead while a cancel held the job"
        assert await cancel_job(cancel, job_id)
    # The claim then sees the cancel, and claims nothing.
    assert await asyncio.wait_for(claim, 10) == 0
    async with db.sessions() as s:
        counts = await item_counts(s, job_id)
    assert counts[ItemStatus.cancelled] == len(ContentKind) * len(concepts)
    assert counts[ItemStatus.running] == 0


async def test_item_claims_do_not_wait_for_the_jobs_own_updates(db: ProcessDatabase) -> None:
    # A save updates the job's totals (FOR NO KEY UPDATE): claims of other items go on.
    job_id, concepts = await _job_with_items(db)
    await _generating(db, job_id)
    async with db.transaction() as save:
        await save.execute(
            update(RoadmapJob).where(RoadmapJob.id == job_id).values(updated_at=func.now())
        )
        claimed = await asyncio.wait_for(_claim_all(db, job_id, concepts), 5)
        assert claimed == len(ContentKind) * len(concepts)


async def test_lease_renewals_wait_for_a_cancel_that_holds_the_job(db: ProcessDatabase) -> None:
    job_id, concepts = await _job_with_items(db)
    await _generating(db, job_id)
    assert await _claim_all(db, job_id, concepts) == len(ContentKind) * len(concepts)

    async def renew() -> int:
        async with db.transaction() as s:
            return await heartbeat_items(s, "t")

    async with db.transaction() as cancel:
        await cancel.execute(select(RoadmapJob).where(RoadmapJob.id == job_id).with_for_update())
        renewal = asyncio.create_task(renew())
        await asyncio.sleep(0.3)
        assert not renewal.done(), "the renewal went ahead while a cancel held the job"
        assert await cancel_job(cancel, job_id)
    assert await asyncio.wait_for(renewal, 10) == 0  # nothing is running any more
