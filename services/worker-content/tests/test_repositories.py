"""The worker's repositories against real Postgres: claims, results, finalisation, reconciler."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, JobStep
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import ContentItem, RoadmapJob
from roadmap_db.repositories import job_lifecycle as jobs
from roadmap_db.repositories.claims import claim_items, claim_job, fail_exhausted_items
from roadmap_db.repositories.frameworks import (
    add_review_round,
    load_framework,
    replace_framework,
)
from roadmap_db.repositories.item_results import (
    ItemSave,
    ResultUsage,
    attempts_left,
    begin_attempt,
    begin_attempts,
    fail_item,
    item_progress,
    record_item_error,
    result_versions,
    save_item_result,
    save_item_results,
)
from roadmap_db.repositories.llm_usage import CallUsage, record_llm_calls
from roadmap_db.repositories.reconcile import (
    finishable_jobs,
    stale_item_concepts,
    stale_planning_jobs,
)
from roadmap_worker_content.testing import Rows, make_framework

LEASE = timedelta(minutes=5)
USAGE = ResultUsage(model="fake", prompt_tokens=10, completion_tokens=20, cost_usd=Decimal("0.01"))


async def _items(db: ProcessDatabase, job_id: uuid.UUID) -> list[ContentItem]:
    async with db.sessions() as s:
        return list(
            (await s.execute(select(ContentItem).where(ContentItem.job_id == job_id))).scalars()
        )


async def _claim(
    db: ProcessDatabase,
    job_id: uuid.UUID,
    concepts: list[uuid.UUID],
    token: str,
    max_attempts: int = 3,
    *,
    count_attempt: bool = True,
) -> list[ContentItem]:
    async with db.transaction() as s:
        return await claim_items(
            s,
            job_id,
            concepts,
            max_attempts=max_attempts,
            lease=LEASE,
            token=token,
            count_attempt=count_attempt,
        )


def _call_usage(
    job_id: uuid.UUID, *, prompt_tokens: int, completion_tokens: int, cost_usd: Decimal
) -> CallUsage:
    return CallUsage(
        job_id=job_id,
        step="tutorial",
        model="m",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_usd,
        duration_ms=12.5,
    )


async def _save(
    db: ProcessDatabase, job_id: uuid.UUID, item_id: uuid.UUID, token: str
) -> int | None:
    async with db.transaction() as s:
        return await save_item_result(
            s, job_id, item_id, token, body={"x": token}, instructions=None, usage=USAGE
        )


async def test_framework_round_trips_and_a_revision_replaces_it(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id = await rows.job()
    async with db.transaction() as s:
        first = await replace_framework(
            s, job_id, make_framework(3), item_status=ItemStatus.pending
        )
        await s.execute(
            update(RoadmapJob).values(title="PostgreSQL internals", summary="From pages to plans")
        )
    async with db.sessions() as s:
        assert await load_framework(s, job_id) == make_framework(3)
    async with db.transaction() as s:
        second = await replace_framework(
            s, job_id, make_framework(2), item_status=ItemStatus.pending
        )
    assert not set(first) & set(second)
    items = await _items(db, job_id)
    assert len(items) == 6
    assert {i.concept_id for i in items} == set(second)
    assert all(i.status is ItemStatus.pending for i in items)


async def test_review_rounds_are_numbered(db: ProcessDatabase, rows: Rows) -> None:
    job_id = await rows.job()
    async with db.transaction() as s:
        r1 = await add_review_round(s, job_id, make_framework(1))
        r2 = await add_review_round(s, job_id, make_framework(2))
    assert (r1.round, r2.round) == (1, 2)


async def test_two_concurrent_claimers_one_wins_each_item(db: ProcessDatabase, rows: Rows) -> None:
    job_id, concepts = await rows.job_with_items(4)

    async def claimer(token: str) -> set[uuid.UUID]:
        async with db.transaction() as s:
            won = await claim_items(s, job_id, concepts, max_attempts=3, lease=LEASE, token=token)
            await asyncio.sleep(0.05)  # keep the row locks while the other claimer waits
            return {i.id for i in won}

    a, b = await asyncio.gather(claimer("a"), claimer("b"))
    assert not a & b
    assert len(a | b) == 12
    assert {i.claim_token for i in await _items(db, job_id)} <= {"a", "b"}


async def test_job_claim_race_and_redelivery_takeover(db: ProcessDatabase, rows: Rows) -> None:
    job_id = await rows.job()
    kwargs = {
        "from_statuses": [JobStatus.queued],
        "to_status": JobStatus.planning,
        "step": JobStep.intent_analysis,
        "max_attempts": 3,
        "lease": LEASE,
    }

    async def claimer(token: str) -> bool:
        async with db.transaction() as s:
            won = await claim_job(s, job_id, token=token, **kwargs)  # type: ignore[arg-type]
            await asyncio.sleep(0.05)
            return won is not None

    assert sorted(await asyncio.gather(claimer("a"), claimer("b"))) == [False, True]
    async with db.sessions() as s:
        holder = (await s.get(RoadmapJob, job_id)).claim_token  # type: ignore[union-attr]
    other = "b" if holder == "a" else "a"
    async with db.transaction() as s:
        assert await claim_job(s, job_id, token=other, **kwargs) is None  # type: ignore[arg-type]
        # The same message redelivered (its process died) takes over at once.
        again = await claim_job(s, job_id, token=holder, **kwargs)  # type: ignore[arg-type]
    assert again is not None
    assert again.attempts == 2


async def test_redelivered_message_resumes_only_missing_items(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id, concepts = await rows.job_with_items(1)
    items = await _claim(db, job_id, concepts, "msg-1")
    assert len(items) == 3
    done = next(i for i in items if i.kind is ContentKind.tutorial)
    assert await _save(db, job_id, done.id, "msg-1") == 1
    # Another message cannot take items whose lease is fresh…
    assert await _claim(db, job_id, concepts, "msg-2") == []
    # …the redelivered one takes over exactly what is not saved yet.
    resumed = await _claim(db, job_id, concepts, "msg-1")
    assert {i.kind for i in resumed} == {ContentKind.resources, ContentKind.quiz}
    assert {i.attempts for i in resumed} == {2}


async def test_a_message_that_keeps_killing_its_process_ends_failed(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id, concepts = await rows.job_with_items(1)
    for _ in range(2):
        assert len(await _claim(db, job_id, concepts, "poison", max_attempts=2)) == 3
    assert await _claim(db, job_id, concepts, "poison", max_attempts=2) == []
    async with db.transaction() as s:
        failed = await fail_exhausted_items(
            s, job_id, max_attempts=2, lease=LEASE, concept_ids=concepts, token="poison"
        )
    assert len(failed) == 3
    async with db.transaction() as s:
        done = await jobs.finalize_job(s, job_id)
    assert done is not None
    assert done.status is JobStatus.partial_failure
    assert len(done.failed_items) == 3


async def test_results_are_versioned_and_only_the_holder_saves(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id, concepts = await rows.job_with_items(1)
    item = (await _claim(db, job_id, concepts, "t1"))[0]
    assert await _save(db, job_id, item.id, "someone-else") is None
    assert await _save(db, job_id, item.id, "t1") == 1
    assert await _save(db, job_id, item.id, "t1") is None  # already succeeded
    async with db.transaction() as s:
        n = await jobs.requeue_concept_items(
            s, job_id, concepts[0], kinds=[item.kind], instructions="shorter please"
        )
    assert n == 1
    item2 = next(i for i in await _claim(db, job_id, concepts, "t2") if i.id == item.id)
    assert item2.instructions == "shorter please"
    assert await _save(db, job_id, item.id, "t2") == 2
    async with db.sessions() as s:
        versions = await result_versions(s, item.id)
    assert [(v.version, v.body) for v in versions] == [(1, {"x": "t1"}), (2, {"x": "t2"})]


async def test_items_saved_together_store_only_what_the_holder_holds(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id, concepts = await rows.job_with_items(2)
    mine = await _claim(db, job_id, concepts[:1], "t1")
    theirs = await _claim(db, job_id, concepts[1:], "t2")
    call = _call_usage(job_id, prompt_tokens=7, completion_tokens=1, cost_usd=Decimal(0))
    saves = [ItemSave(i.id, {"kind": i.kind.value}, None, USAGE, [call]) for i in mine + theirs]
    async with db.transaction() as s:
        versions = await save_item_results(s, job_id, "t1", saves)
    assert versions == {**{i.id: 1 for i in mine}, **{i.id: None for i in theirs}}
    statuses = {i.id: i.status for i in await _items(db, job_id)}
    assert {statuses[i.id] for i in mine} == {ItemStatus.succeeded}
    assert {statuses[i.id] for i in theirs} == {ItemStatus.running}
    async with db.sessions() as s:
        assert [v.body for v in await result_versions(s, mine[0].id)] == [
            {"kind": mine[0].kind.value}
        ]
        job = await jobs.get_job(s, job_id)
    # Every call was paid for, stored or not.
    assert job is not None
    assert (job.llm_calls, job.prompt_tokens) == (6, 42)


async def test_cancelled_job_stores_nothing(db: ProcessDatabase, rows: Rows) -> None:
    job_id, concepts = await rows.job_with_items(1)
    item = (await _claim(db, job_id, concepts, "t"))[0]
    async with db.transaction() as s:
        assert await jobs.cancel_job(s, job_id)
    assert await _save(db, job_id, item.id, "t") is None
    assert {i.status for i in await _items(db, job_id)} == {ItemStatus.cancelled}


async def test_attempts_are_counted_when_they_start_and_bounded(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id, concepts = await rows.job_with_items(1)
    items = await _claim(db, job_id, concepts, "t", max_attempts=2, count_attempt=False)
    assert {i.attempts for i in items} == {0}  # claimed, not charged
    item = items[0]
    async with db.transaction() as s:
        assert await begin_attempt(s, job_id, item.id, "t", max_attempts=2) == 1
        assert await begin_attempt(s, job_id, item.id, "other", max_attempts=2) is None
        assert await record_item_error(s, item.id, "t", error="boom")
        assert await begin_attempt(s, job_id, item.id, "t", max_attempts=2) == 2
        assert await begin_attempt(s, job_id, item.id, "t", max_attempts=2) is None
        assert await attempts_left(s, item.id, "t", max_attempts=2) is False
        assert await attempts_left(s, item.id, "other", max_attempts=2) is None
        assert await fail_item(s, item.id, "t", error="boom")
    # A cancelled job starts no attempt.
    other = items[1]
    async with db.transaction() as s:
        assert await jobs.cancel_job(s, job_id)
    async with db.transaction() as s:
        assert await begin_attempt(s, job_id, other.id, "t", max_attempts=2) is None


async def test_attempts_of_several_items_begin_in_one_statement(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id, concepts = await rows.job_with_items(2)
    items = await _claim(db, job_id, concepts, "t", max_attempts=2, count_attempt=False)
    first, second, *others = items
    async with db.transaction() as s:
        assert await begin_attempt(s, job_id, second.id, "t", max_attempts=2) == 1
        assert await begin_attempt(s, job_id, second.id, "t", max_attempts=2) == 2
        # Only the items that may start an attempt: not one whose attempts are used up,
        # nor one held under another token.
        begun = await begin_attempts(
            s, job_id, [first.id, second.id, *(i.id for i in others)], "t", max_attempts=2
        )
        assert begun == {first.id: 1, **{i.id: 1 for i in others}}
        assert await begin_attempts(s, job_id, [first.id], "other", max_attempts=2) == {}
        assert await begin_attempts(s, job_id, [], "t", max_attempts=2) == {}
    async with db.transaction() as s:
        assert await jobs.cancel_job(s, job_id)
    async with db.transaction() as s:
        assert await begin_attempts(s, job_id, [first.id], "t", max_attempts=2) == {}


async def test_exactly_one_concurrent_finaliser_wins(db: ProcessDatabase, rows: Rows) -> None:
    job_id, concepts = await rows.job_with_items(2)
    items = await _claim(db, job_id, concepts, "t")
    for item in items[:-1]:
        assert await _save(db, job_id, item.id, "t") is not None
    async with db.transaction() as s:
        assert await jobs.finalize_job(s, job_id) is None  # one item still running
        assert await fail_item(s, items[-1].id, "t", error="bad output")

    async def finaliser() -> jobs.Finalized | None:
        async with db.transaction() as s:
            return await jobs.finalize_job(s, job_id)

    results = [r for r in await asyncio.gather(*(finaliser() for _ in range(4))) if r]
    assert len(results) == 1
    assert results[0].status is JobStatus.partial_failure
    assert [f.item_id for f in results[0].failed_items] == [items[-1].id]
    async with db.sessions() as s:
        job = await jobs.get_job(s, job_id)
    assert job is not None
    assert job.status is JobStatus.partial_failure
    assert job.error is not None
    assert "bad output" not in job.error
    assert "1 item(s) failed" in job.error


async def test_retry_requeues_exactly_the_failed_items(db: ProcessDatabase, rows: Rows) -> None:
    job_id, concepts = await rows.job_with_items(1)
    items = await _claim(db, job_id, concepts, "t")
    async with db.transaction() as s:
        for item in items[:2]:
            await save_item_result(s, job_id, item.id, "t", body={}, instructions=None, usage=USAGE)
        await fail_item(s, items[2].id, "t", error="x")
        await jobs.finalize_job(s, job_id)
    async with db.transaction() as s:
        assert await jobs.requeue_failed_items(s, job_id) == 1
        assert await jobs.requeue_failed_items(s, job_id) == 0  # job is generating again
    async with db.sessions() as s:
        progress = await item_progress(s, job_id)
        job = await jobs.get_job(s, job_id)
    assert (progress["succeeded"], progress["queued"], progress["total"]) == (2, 1, 3)
    assert job is not None
    assert job.status is JobStatus.generating


async def test_review_decisions_follow_the_state_machine(db: ProcessDatabase, rows: Rows) -> None:
    job_id, _ = await rows.job_with_items(
        2, item_status=ItemStatus.pending, status=JobStatus.awaiting_review
    )
    async with db.transaction() as s:
        round1 = await add_review_round(s, job_id, make_framework(2))
    async with db.transaction() as s:
        assert await jobs.request_changes(s, job_id, round1.id, "more SQL")
        assert not await jobs.approve_review(s, job_id, round1.id)  # job is queued now
    async with db.transaction() as s:
        await s.execute(update(RoadmapJob).values(status=JobStatus.awaiting_review))
        round2 = await add_review_round(s, job_id, make_framework(2))
    async with db.transaction() as s:
        assert await jobs.approve_review(s, job_id, round2.id)
    async with db.sessions() as s:
        progress = await item_progress(s, job_id)
    assert progress["queued"] == 6


async def test_usage_is_summed_on_the_job(db: ProcessDatabase, rows: Rows) -> None:
    job_id = await rows.job()
    call = _call_usage(job_id, prompt_tokens=100, completion_tokens=50, cost_usd=Decimal("0.002"))
    async with db.transaction() as s:
        await record_llm_calls(s, [call, call])
    async with db.sessions() as s:
        job = await jobs.get_job(s, job_id)
    assert job is not None
    assert (job.prompt_tokens, job.completion_tokens, job.llm_calls) == (200, 100, 2)
    assert job.cost_usd == Decimal("0.004")


async def test_planning_attempts_run_out(db: ProcessDatabase, rows: Rows) -> None:
    job_id = await rows.job()
    kwargs = {
        "from_statuses": [JobStatus.queued],
        "to_status": JobStatus.planning,
        "step": JobStep.intent_analysis,
        "max_attempts": 1,
        "lease": LEASE,
    }
    async with db.transaction() as s:
        assert await claim_job(s, job_id, token="m", **kwargs) is not None  # type: ignore[arg-type]
    async with db.transaction() as s:
        assert not await jobs.fail_exhausted_job(s, job_id, max_attempts=1, lease=LEASE, token="x")
        assert await jobs.fail_exhausted_job(s, job_id, max_attempts=1, lease=LEASE, token="m")
    async with db.sessions() as s:
        job = await jobs.get_job(s, job_id)
    assert job is not None
    assert job.status is JobStatus.failed
    assert job.error is not None
    assert "1 attempts" in job.error


async def test_reconciler_finds_lost_and_abandoned_work_once_per_stale_age(
    db: ProcessDatabase, rows: Rows
) -> None:
    queued_job = await rows.job()
    gen_job, concepts = await rows.job_with_items(2)
    old = timedelta(hours=1)
    async with db.transaction() as s:
        await s.execute(update(RoadmapJob).values(enqueued_at=RoadmapJob.created_at - old))
        await s.execute(update(ContentItem).values(updated_at=ContentItem.updated_at - old))
    async with db.transaction() as s:
        found = await stale_planning_jobs(s, stale_age=timedelta(minutes=1), lease=LEASE, limit=10)
        lost = await stale_item_concepts(s, stale_age=timedelta(minutes=1), lease=LEASE, limit=100)
    assert [j.job_id for j in found] == [queued_job]
    assert lost == {gen_job: sorted(concepts)}
    async with db.transaction() as s:
        # Stamped: not found again until another stale age has passed.
        assert (
            await stale_planning_jobs(s, stale_age=timedelta(minutes=1), lease=LEASE, limit=10)
            == []
        )
        assert (
            await stale_item_concepts(s, stale_age=timedelta(minutes=1), lease=LEASE, limit=100)
            == {}
        )
    items = await _claim(db, gen_job, concepts, "t")
    async with db.transaction() as s:
        for item in items:
            await save_item_result(
                s, gen_job, item.id, "t", body={}, instructions=None, usage=USAGE
            )
        assert await finishable_jobs(s, grace=timedelta(0), limit=10) == [gen_job]


async def test_an_item_whose_tasks_die_before_any_attempt_still_ends(
    db: ProcessDatabase, rows: Rows
) -> None:
    job_id, concepts = await rows.job_with_items(1)
    for _ in range(3):
        async with db.transaction() as s:
            items = await claim_items(
                s,
                job_id,
                concepts,
                max_attempts=2,
                lease=LEASE,
                token="t",
                count_attempt=False,
                max_claims=3,
            )
        assert len(items) == 3
    async with db.transaction() as s:
        assert (
            await claim_items(
                s,
                job_id,
                concepts,
                max_attempts=2,
                lease=LEASE,
                token="t",
                count_attempt=False,
                max_claims=3,
            )
            == []
        )
        failed = await fail_exhausted_items(
            s, job_id, max_attempts=2, lease=LEASE, token="t", max_claims=3
        )
    assert len(failed) == 3
    assert {f.attempts for f in failed} == {0}
    assert all(f.error and "kept ending" in f.error for f in failed)
    async with db.transaction() as s:
        assert await jobs.finalize_job(s, job_id) is not None
        assert await jobs.requeue_failed_items(s, job_id) == 3
    assert {(i.status, i.claims, i.attempts) for i in await _items(db, job_id)} == {
        (ItemStatus.queued, 0, 0)
    }
