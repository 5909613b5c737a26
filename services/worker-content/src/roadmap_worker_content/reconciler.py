"""The reconciler: re-sends work whose message was lost or whose worker died.

Exactly one is active across every replica: each worker process runs a
:class:`ReconcilerThread`, and only the one holding a session-level Postgres
advisory lock (on a connection of its own, kept open) works; the others retry
the lock every interval and take over when the holder's connection goes away.

A pass (see docs/jobs.md, "Reconciler"):

- jobs ``queued`` whose last send is older than ``STALE_AGE_S``, and jobs
  ``planning`` whose lease expired → ``plan_job`` (``apply_review`` when the
  latest review round asked for changes);
- items of ``generating`` jobs ``queued`` longer than ``STALE_AGE_S`` or
  ``running`` with an expired lease → ``generate_concepts`` for their concepts
  (the task fails those whose attempts are used up);
- ``generating`` jobs with no unfinished item → finalised;
- beside the passes, stored resource links due for a re-check are checked again
  (``roadmap_worker_content.links``).

Duplicates are harmless: every task claims before it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from celery import Celery
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roadmap_core.contracts import send_answer_chat, send_apply_review, send_plan_job
from roadmap_core.domain import LogCategory
from roadmap_core.logdetails import ReconcilerPassDetails
from roadmap_core.logship import emit
from roadmap_db.engine import ProcessDatabase, create_engine
from roadmap_db.repositories.chat import stale_pending_answers
from roadmap_db.repositories.reconcile import (
    finishable_jobs,
    stale_item_concepts,
    stale_planning_jobs,
)
from roadmap_worker_content.events import EventPublisher
from roadmap_worker_content.fanout import send_concept_batches
from roadmap_worker_content.finalize import finalize_and_announce
from roadmap_worker_content.links import RecheckReport, recheck_links_once
from roadmap_worker_content.runtime import build_search
from roadmap_worker_content.settings import SERVICE_NAME, ContentWorkerSettings

log = logging.getLogger(__name__)

# Fixed key shared by every replica ("RECONCILE" in ASCII, truncated to fit a bigint).
RECONCILER_LOCK_KEY = 0x5245434F4E43494C


@dataclass(slots=True)
class PassReport:
    plan_jobs: list[uuid.UUID] = field(default_factory=list)
    revisions: list[uuid.UUID] = field(default_factory=list)
    generate_messages: int = 0
    finalized: list[uuid.UUID] = field(default_factory=list)
    chat_answers: list[uuid.UUID] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.plan_jobs
            or self.revisions
            or self.generate_messages
            or self.finalized
            or self.chat_answers
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "plan_jobs": [str(j) for j in self.plan_jobs],
            "revisions": [str(j) for j in self.revisions],
            "generate_messages": self.generate_messages,
            "finalized": [str(j) for j in self.finalized],
            "chat_answers": [str(m) for m in self.chat_answers],
        }


async def reconcile_once(
    db: ProcessDatabase,
    progress: EventPublisher,
    app: Celery,
    settings: ContentWorkerSettings,
) -> PassReport:
    """One pass. The caller makes sure it is the only active reconciler."""
    report = PassReport()
    async with db.transaction() as session:
        jobs = await stale_planning_jobs(
            session,
            stale_age=settings.stale_age,
            lease=settings.item_lease,
            limit=settings.reconcile_batch,
        )
    for job in jobs:
        if job.revision_round_id is not None:
            await asyncio.to_thread(send_apply_review, app, job.job_id, job.revision_round_id)
            report.revisions.append(job.job_id)
        else:
            await asyncio.to_thread(send_plan_job, app, job.job_id)
            report.plan_jobs.append(job.job_id)

    async with db.transaction() as session:
        concepts_by_job = await stale_item_concepts(
            session,
            stale_age=settings.stale_age,
            lease=settings.item_lease,
            limit=settings.reconcile_batch,
        )
    for job_id, concept_ids in concepts_by_job.items():
        report.generate_messages += await asyncio.to_thread(
            send_concept_batches, app, job_id, concept_ids, settings.concept_batch_size
        )

    async with db.transaction() as session:
        finishable = await finishable_jobs(
            session, grace=settings.stale_age, limit=settings.reconcile_batch
        )
    for job_id in finishable:
        if await finalize_and_announce(db, progress, job_id) is not None:
            report.finalized.append(job_id)

    # A chat answer whose task was lost (the API's send failed, Redis lost it): send again.
    # A duplicate is harmless: whichever task claims the answer first writes it.
    async with db.transaction() as session:
        answers = await stale_pending_answers(
            session, stale_age=settings.stale_age, limit=settings.reconcile_batch
        )
    for job_id, message_id in answers:
        await asyncio.to_thread(send_answer_chat, app, job_id, message_id)
        report.chat_answers.append(message_id)

    if not report.empty:
        log.info("reconciler re-sent work: %s", report.as_dict())
        emit(
            "reconciler pass",
            category=LogCategory.system,
            step="reconcile",
            details=ReconcilerPassDetails(
                plan_jobs=report.plan_jobs,
                revisions=report.revisions,
                generate_messages=report.generate_messages,
                finalized=report.finalized,
            ),
        )
    return report


class LeaderLock:
    """A session-level advisory lock held on a dedicated connection."""

    def __init__(self, engine: AsyncEngine, key: int = RECONCILER_LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._conn: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def acquire(self) -> bool:
        """True when this process holds the lock (kept while the connection lives)."""
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                await self._conn.commit()  # never sit idle in a transaction
                return True
            except Exception:
                # The server ended our session (restart, network): the lock went with it.
                await self._drop()
        conn = await self._engine.connect()
        try:
            got = (await conn.execute(select(func.pg_try_advisory_lock(self._key)))).scalar_one()
            await conn.commit()
        except Exception:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            await self._conn.execute(select(func.pg_advisory_unlock(self._key)))
            await self._conn.commit()
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


async def run_reconciler(
    settings: ContentWorkerSettings,
    app: Celery,
    stop: asyncio.Event,
    on_leadership: Callable[[bool], None] | None = None,
) -> None:
    """Try to lead every interval; while leading, run a pass every interval, until ``stop``."""
    lock_engine = create_engine(settings, f"{SERVICE_NAME}-reconciler", null_pool=True)
    db = ProcessDatabase(settings, f"{SERVICE_NAME}-reconciler", pool_size=1, max_overflow=0)
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
    )
    progress = EventPublisher(redis, settings)
    lock = LeaderLock(lock_engine)
    leading = False
    search = build_search(settings)
    # The link re-check runs beside the passes (it waits on web pages; a pass must not).
    recheck: asyncio.Task[RecheckReport] | None = None
    try:
        while not stop.is_set():
            try:
                now_leading = await lock.acquire()
                if now_leading != leading:
                    leading = now_leading
                    log.info("reconciler %s", "is the leader" if leading else "stands by")
                    if on_leadership is not None:
                        on_leadership(leading)
                if leading:
                    await reconcile_once(db, progress, app, settings)
                    if search is not None and (recheck is None or recheck.done()):
                        recheck = asyncio.create_task(recheck_links_once(db, search, settings))
                        recheck.add_done_callback(_log_failure)
            except Exception:
                log.exception("reconciler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.reconcile_interval_s)
    finally:
        if recheck is not None and not recheck.done():
            recheck.cancel()
            with contextlib.suppress(BaseException):
                await recheck
        if search is not None:
            await search.aclose()
        await lock.release()
        await db.dispose()
        await lock_engine.dispose()
        await redis.aclose()


def _log_failure(task: asyncio.Task[RecheckReport]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("link re-check failed", exc_info=task.exception())


class ReconcilerThread:
    """Runs :func:`run_reconciler` on an event loop of its own in a daemon thread."""

    def __init__(self, settings: ContentWorkerSettings, app: Celery) -> None:
        self._settings = settings
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.leading = False

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop, self._stop = loop, asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(
                    run_reconciler(self._settings, self._app, self._stop, self._set_leading)
                )
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name="roadmap-reconciler", daemon=True)
        self._thread.start()
        ready.wait()

    def _set_leading(self, leading: bool) -> None:
        self.leading = leading

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._stop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
