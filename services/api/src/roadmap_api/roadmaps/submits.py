"""``POST /roadmaps`` for many requests at once: one statement, then one send.

Each request hands its job to a :class:`~roadmap_core.batching.Batcher`; the submits that
arrive while a statement is in flight go together in the next ``roadmap_submit_jobs``
call (owner locks, quotas and inserts for the whole batch, one commit). A lone request is
sent at once, so it waits no longer than it would on its own. If the statement fails,
nothing of its batch was written. A row error (a value or constraint the database refuses,
``errors.is_row_error``) is isolated: the batch is retried in halves until only the
requests that cause it fail, so one user's input never fails another's request. Any
other error (the database is away) reaches every request of the batch.

Once the batch has committed, the ``plan_job`` tasks of the jobs it created go out in one
send (:meth:`Enqueuer.plan_jobs`); the requests of the batch answer when it has finished
or given up. Meanwhile the next batch can already run its statement.

While submits keep coming, the statements reuse their pool connections instead of checking
one out (and pinging it) per batch; a connection goes back to the pool after
``IDLE_RELEASE_S`` without a statement, and is thrown away after any error. Two batches in
flight may share owners: ``roadmap_submit_jobs`` locks owners in id order, so they wait
for each other instead of deadlocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from roadmap_api.enqueue import Enqueuer
from roadmap_api.errors import is_row_error
from roadmap_core import telemetry
from roadmap_core.batching import Batcher
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories import job_actions
from roadmap_db.repositories.job_actions import CreateOutcome, NewJob, QuotaLimits

T = TypeVar("T")

MAX_BATCH = 64
# Statements in flight per process: one batch fills up while the previous one commits.
MAX_IN_FLIGHT = 2
IDLE_RELEASE_S = 1.0


@dataclass(slots=True)
class _Held:
    conn: AsyncConnection
    autocommit: AsyncConnection
    last_used: float = 0.0


class JobSubmitter:
    def __init__(self, db: ProcessDatabase, enqueuer: Enqueuer, limits: QuotaLimits) -> None:
        self._db = db
        self._enqueuer = enqueuer
        self._limits = limits
        self._batcher: Batcher[NewJob, CreateOutcome] = Batcher(
            self._flush, max_batch=MAX_BATCH, max_in_flight=MAX_IN_FLIGHT, isolate=is_row_error
        )
        # Connections between statements; at most MAX_IN_FLIGHT, none while idle.
        self._idle: list[_Held] = []
        self._reaper: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # With tracing on: the context of the request that submitted each job in flight.
        self._traces: dict[uuid.UUID, dict[str, str]] = {}

    async def submit(self, job: NewJob) -> CreateOutcome:
        """The job's outcome; if it was created, its task has been sent (or left to the
        reconciler) by the time this returns."""
        trace = telemetry.carrier()
        if trace is None:
            return await self._batcher.submit(job)
        self._traces[job.job_id] = trace
        try:
            return await self._batcher.submit(job)
        finally:
            self._traces.pop(job.job_id, None)

    async def aclose(self) -> None:
        await self._batcher.aclose()
        if self._reaper is not None:
            self._reaper.cancel()
        idle, self._idle = self._idle, []
        for held in idle:
            await _close(held.conn, invalidate=False)
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _flush(self, jobs: list[NewJob]) -> Sequence[CreateOutcome]:
        held = self._idle.pop() if self._idle else await self._checkout()
        try:
            outcomes = await job_actions.create_jobs(held.autocommit, jobs, self._limits)
        except Exception as exc:
            if is_row_error(exc):
                # The server refused a value; the connection is fine for the retries.
                self._keep(held)
            else:
                await _close(held.conn, invalidate=True)
            raise
        except BaseException:
            await _close(held.conn, invalidate=True)
            raise
        self._keep(held)
        created = [
            job.job_id for job, outcome in zip(jobs, outcomes, strict=True) if outcome.created
        ]
        if created:
            traces = [self._traces.get(j) for j in created] if self._traces else None
            # Never raises: failures are the reconciler's.
            await self._enqueuer.plan_jobs(created, traces)
        return outcomes

    def _keep(self, held: _Held) -> None:
        loop = asyncio.get_running_loop()
        held.last_used = loop.time()
        self._idle.append(held)
        if self._reaper is None:
            self._reaper = loop.call_later(IDLE_RELEASE_S, self._reap)

    async def _checkout(self) -> _Held:
        conn = await self._db.engine.connect().start()
        try:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            await _close(conn, invalidate=True)
            raise
        return _Held(conn, autocommit)

    def _reap(self) -> None:
        """Put back the connections no statement used for IDLE_RELEASE_S."""
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - IDLE_RELEASE_S
        # Only idle connections are in the list, and this runs between statements: taking
        # them out here, synchronously, is safe.
        stale = [held for held in self._idle if held.last_used <= cutoff]
        self._idle = [held for held in self._idle if held.last_used > cutoff]
        for held in stale:
            self._spawn(_close(held.conn, invalidate=False))
        self._reaper = loop.call_later(IDLE_RELEASE_S, self._reap) if self._idle else None

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _close(conn: AsyncConnection, *, invalidate: bool) -> None:
    with contextlib.suppress(Exception):
        if invalidate:
            await conn.invalidate()
        await conn.close()
