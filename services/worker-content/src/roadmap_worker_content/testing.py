"""Helpers for tests of the content worker and cross-service tests (no pytest import here).

``Rows`` creates rows the way the API does (through the same repositories);
``running_worker`` starts a real worker process (prefork children, reconciler)
against given Postgres/Redis/LLM URLs and stops it by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
from celery import Celery
from redis import Redis as SyncRedis
from sqlalchemy import func

from roadmap_core.broker_queues import task_of
from roadmap_core.contracts import CONTENT_QUEUE, LOGS_QUEUE, send_plan_job
from roadmap_core.domain import (
    Concept,
    Framework,
    ItemStatus,
    JobStatus,
    Module,
    RoadmapRequest,
    Stage,
)
from roadmap_core.heartbeat import WorkerType, heartbeat_key
from roadmap_core.progress import ProgressEvent, decode_entry, stream_key
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import RoadmapJob, User
from roadmap_db.repositories.frameworks import replace_framework
from roadmap_db.repositories.job_lifecycle import get_job


def _unusable_hash() -> str:
    # Never a valid argon2 hash: nobody can log in as a test user.
    return "!"


def make_request(**overrides: Any) -> RoadmapRequest:
    data: dict[str, Any] = {
        "goal": "Learn PostgreSQL internals",
        "level": "intermediate",
        "weekly_hours": 6,
        "weeks": 8,
    }
    data.update(overrides)
    return RoadmapRequest.model_validate(data)


def make_framework(n_concepts: int = 3) -> Framework:
    concepts = [
        Concept(
            id=f"concept-{i}",
            title=f"Concept {i}",
            summary=f"About concept {i}",
            difficulty=2,
            estimated_hours=1.0,
            prerequisites=[f"concept-{i - 1}"] if i else [],
        )
        for i in range(n_concepts)
    ]
    return Framework(
        title="PostgreSQL internals",
        summary="From pages to plans",
        stages=[Stage(title="Stage", modules=[Module(title="Module", concepts=concepts)])],
    )


class Rows:
    """Creates rows the way the API does, through the same repositories."""

    def __init__(self, db: ProcessDatabase) -> None:
        self.db = db

    async def job(
        self, req: RoadmapRequest | None = None, *, status: JobStatus = JobStatus.queued
    ) -> uuid.UUID:
        async with self.db.transaction() as s:
            user = User(email=f"{uuid.uuid4().hex}@example.com", password_hash=_unusable_hash())
            s.add(user)
            await s.flush()
            job = RoadmapJob(
                owner_id=user.id,
                request=(req or make_request()).model_dump(mode="json"),
                status=status,
                enqueued_at=func.now(),
            )
            s.add(job)
            await s.flush()
            return job.id

    async def job_with_items(
        self,
        n_concepts: int = 3,
        *,
        item_status: ItemStatus = ItemStatus.queued,
        status: JobStatus = JobStatus.generating,
    ) -> tuple[uuid.UUID, list[uuid.UUID]]:
        job_id = await self.job(status=status)
        async with self.db.transaction() as s:
            concept_ids = await replace_framework(
                s, job_id, make_framework(n_concepts), item_status=item_status
            )
        return job_id, concept_ids


DEFAULT_TEST_ENV: dict[str, str] = {
    "APP_ENV": "test",
    "REMAP_SIGTERM": "SIGQUIT",
    "ITEM_LEASE_S": "3",
    "RECONCILE_INTERVAL_S": "1",
    "STALE_AGE_S": "2",
    "SOFT_SHUTDOWN_TIMEOUT_S": "3",
    "LLM_TIMEOUT_S": "10",
    "LLM_RPM": "100000",
    "LLM_TPM": "100000000",
    "LOG_FLUSH_INTERVAL_MS": "200",
}


class WorkerProcess:
    """A running ``celery worker`` for the content queue, owned by the caller."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, redis_url: str) -> None:
        self.process = process
        self.log_path = log_path
        self.redis_url = redis_url

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """Pids of the prefork children right now."""
        try:
            return [c.pid for c in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        """Until the main process reports its heartbeat and every child is up."""
        key = heartbeat_key(WorkerType.content, f"{socket.gethostname()}:{self.pid}")
        client = SyncRedis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"worker exited early:\n{self.log()[-4000:]}")
                if client.exists(key):
                    return
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()[-4000:]}")

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a soft shutdown) and wait; returns the exit code, None if still running."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the main process and the children it still has, by pid."""
        pids = self.children()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self, timeout: float = 30.0) -> None:
        children = self.children()
        if self.terminate(timeout) is None:
            self.kill()
        # Children normally exit with their parent; make sure of it.
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_worker(
    *,
    database_url: str,
    redis_url: str,
    llm_base_url: str,
    log_dir: Path,
    concurrency: int = 2,
    env: dict[str, str] | None = None,
    startup_timeout: float = 60.0,
) -> WorkerProcess:
    """Start ``celery -A roadmap_worker_content.app:celery_app worker`` (prefork, content
    queue) with settings pointing at these URLs; the caller must ``stop()`` it."""
    full_env = {
        **os.environ,
        **DEFAULT_TEST_ENV,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": llm_base_url,
        # The fake LLM's process also serves the fake web search and its pages.
        "SEARCH_PROVIDER": "searxng",
        "SEARCH_BASE_URL": llm_base_url.removesuffix("/v1") + "/search-fake",
        "LINK_CHECK_ALLOW_LOOPBACK": "true",
        "WORKER_CONCURRENCY": str(concurrency),
        **(env or {}),
    }
    full_env.pop("OPENAI_API_KEY", None)  # the fake needs none; never leak a real one
    name = f"content-{uuid.uuid4().hex[:8]}@%h"
    log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, our own module
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "roadmap_worker_content.app:celery_app",
                "worker",
                "--pool",
                "prefork",
                "-c",
                str(concurrency),
                "-Q",
                CONTENT_QUEUE,
                "-n",
                name,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, log_path, redis_url)
    try:
        worker.wait_ready(startup_timeout)
    except BaseException:
        worker.kill()
        raise
    return worker


@contextlib.contextmanager
def running_worker(**kwargs: Any) -> Iterator[WorkerProcess]:
    """``start_worker(**kwargs)`` for the duration of the block; stopped (by pid) after."""
    worker = start_worker(**kwargs)
    try:
        yield worker
    finally:
        worker.stop()


async def submit_job(
    db: ProcessDatabase, app: Celery, req: RoadmapRequest | None = None
) -> uuid.UUID:
    """Create a job the way the API does: insert the row, commit, then send ``plan_job``."""
    job_id = await Rows(db).job(req)
    await asyncio.to_thread(send_plan_job, app, job_id)
    return job_id


async def wait_for_job(
    db: ProcessDatabase,
    job_id: uuid.UUID,
    statuses: Collection[JobStatus],
    *,
    within_s: float = 60.0,
    workers: Sequence[WorkerProcess] = (),
) -> RoadmapJob:
    """Poll until the job is in one of ``statuses``; fails with its state and worker logs."""
    deadline = time.monotonic() + within_s
    job: RoadmapJob | None = None
    while time.monotonic() < deadline:
        async with db.sessions() as session:
            job = await get_job(session, job_id)
        if job is not None and job.status in statuses:
            return job
        await asyncio.sleep(0.05)
    logs = "\n".join(w.log()[-3000:] for w in workers)
    state = f"{job.status}/{job.current_step} error={job.error!r}" if job else "missing"
    raise AssertionError(
        f"job {job_id} not in {sorted(statuses)} after {within_s}s: {state}\n{logs}"
    )


def progress_events(redis_url: str, job_id: uuid.UUID) -> list[ProgressEvent]:
    """Every event of the job's progress stream, oldest first."""
    client = SyncRedis.from_url(redis_url)
    try:
        entries = client.xrange(stream_key(job_id)) or []
        return [decode_entry(fields) for _, fields in entries if fields is not None]
    finally:
        client.close()


def shipped_log_events(redis_url: str) -> list[dict[str, Any]]:
    """Every execution-log event waiting in the ``logs`` queue, as its producer sent it."""
    client = SyncRedis.from_url(redis_url)
    try:
        raw = client.lrange(LOGS_QUEUE, 0, -1)
    finally:
        client.close()
    return [event for entry in reversed(raw) for event in task_of(entry)[1]["events"]]


WorkerFactory = Callable[..., WorkerProcess]
