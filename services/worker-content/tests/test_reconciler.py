"""The reconciler in-process: one leader across replicas, and what one pass sends."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text, update

from roadmap_core import contracts
from roadmap_core.domain import ItemStatus, JobStatus
from roadmap_core.progress import ProgressType
from roadmap_core.settings import normalise_postgres_url
from roadmap_db.engine import ProcessDatabase, create_engine
from roadmap_db.models import ContentItem, RoadmapJob
from roadmap_db.repositories import job_lifecycle as jobs
from roadmap_db.repositories.frameworks import add_review_round
from roadmap_db.testing import settings_for
from roadmap_worker_content.events import EventPublisher
from roadmap_worker_content.reconciler import LeaderLock, reconcile_once
from roadmap_worker_content.settings import ContentWorkerSettings
from roadmap_worker_content.testing import Rows, make_framework, progress_events

OLD = timedelta(hours=1)


class RecordingApp:
    """Stands in for the Celery app: records what ``contracts.send`` publishes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    @contextlib.contextmanager
    def producer_or_acquire(self) -> Iterator[None]:
        yield None

    def send_task(self, name: str, args: tuple[Any, ...], queue: str, **options: Any) -> Any:
        assert queue == contracts.CONTENT_QUEUE
        self.sent.append((name, args[0]))

        class Result:
            id = str(uuid.uuid4())

        return Result()


async def test_exactly_one_leader_and_a_takeover_when_its_connection_dies(
    migrated_url: str,
) -> None:
    settings = settings_for(migrated_url)
    engines = [create_engine(settings, f"reconciler-test-{n}", null_pool=True) for n in "ab"]
    a, b = (LeaderLock(e) for e in engines)
    try:
        assert await a.acquire()
        assert not await b.acquire()
        assert await a.acquire()  # still ours: checked on the held connection
        async with engines[1].connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'reconciler-test-a'"
                )
            )
        assert await b.acquire()  # the server ended the holder's session, lock and all
        assert not await a.acquire()
        await b.release()
        assert await a.acquire()
    finally:
        await a.release()
        await b.release()
        for engine in engines:
            await engine.dispose()


async def test_one_pass_resends_lost_work_once_and_finalises(
    db: ProcessDatabase, rows: Rows, migrated_url: str, redis_url: str
) -> None:
    settings = ContentWorkerSettings(
        database_url=normalise_postgres_url(migrated_url),
        redis_url=redis_url,
        stale_age_s=60,
        item_lease_s=60,
        concept_batch_size=2,
    )
    lost_plan = await rows.job()
    revision = await rows.job(status=JobStatus.awaiting_review)
    async with db.transaction() as s:
        round_ = await add_review_round(s, revision, make_framework(1))
    async with db.transaction() as s:
        assert await jobs.request_changes(s, revision, round_.id, "shorter")
    lost_items, concepts = await rows.job_with_items(3)
    finished, _ = await rows.job_with_items(1, item_status=ItemStatus.succeeded)
    fresh = await rows.job()  # sent a moment ago: left alone
    async with db.transaction() as s:
        await s.execute(
            update(RoadmapJob)
            .where(RoadmapJob.id != fresh)
            .values(
                enqueued_at=RoadmapJob.enqueued_at - OLD, updated_at=RoadmapJob.updated_at - OLD
            )
        )
        await s.execute(update(ContentItem).values(updated_at=ContentItem.updated_at - OLD))

    app = RecordingApp()
    client = Redis.from_url(redis_url)
    try:
        report = await reconcile_once(db, EventPublisher(client, settings), app, settings)  # type: ignore[arg-type]
        again = await reconcile_once(db, EventPublisher(client, settings), app, settings)  # type: ignore[arg-type]
    finally:
        await client.aclose()

    assert report.plan_jobs == [lost_plan]
    assert report.revisions == [revision]
    assert report.finalized == [finished]
    assert report.generate_messages == 2  # 3 concepts in batches of 2
    assert again.empty
    sent = sorted(app.sent, key=lambda m: m[0])
    assert sent == sorted(
        [
            ("content.apply_review", {"job_id": str(revision), "round_id": str(round_.id)}),
            ("content.plan_job", {"job_id": str(lost_plan)}),
            (
                "content.generate_concepts",
                {"job_id": str(lost_items), "concept_ids": [str(c) for c in sorted(concepts)[:2]]},
            ),
            (
                "content.generate_concepts",
                {"job_id": str(lost_items), "concept_ids": [str(c) for c in sorted(concepts)[2:]]},
            ),
        ],
        key=lambda m: m[0],
    )
    async with db.sessions() as s:
        job = await jobs.get_job(s, finished)
    assert job is not None
    assert job.status is JobStatus.completed
    events = progress_events(redis_url, finished)
    assert [e.type for e in events] == [ProgressType.completed]
