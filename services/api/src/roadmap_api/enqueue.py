"""Send tasks after commit without blocking the event loop.

kombu publishes synchronously, so publishing happens in one thread per process
(:class:`Publisher`); a request hands it the contract and payload and awaits the outcome
for at most ``ENQUEUE_TIMEOUT_S``. Sends that pile up while one is in flight go out
together in one Redis pipeline (``producer.batch()``).

A send that fails or times out is logged and counted, never raised: its row is already
committed with ``enqueued_at`` set, and the reconciler sends it again once that is stale.
Callers only get here after their transaction committed, so nothing is ever sent for a
row that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import uuid
from dataclasses import dataclass

from celery import Celery

from roadmap_api.metrics import ApiMetrics
from roadmap_core import contracts
from roadmap_core.contracts import Contract, Payload

log = logging.getLogger("roadmap_api.enqueue")

MAX_BATCH = 64
MAX_PENDING = 10_000


@dataclass(slots=True)
class _Send:
    contract: Contract
    payload: Payload
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[bool]


def _settle(done: asyncio.Future[bool], ok: bool) -> None:
    if not done.done():
        done.set_result(ok)


class Publisher:
    """The publishing thread of one process."""

    def __init__(self, celery: Celery, *, max_batch: int = MAX_BATCH) -> None:
        self.celery = celery
        self._max_batch = max_batch
        # Bounded: when Redis hangs, sends fail fast instead of piling up in memory.
        self._pending: queue.Queue[_Send | None] = queue.Queue(maxsize=MAX_PENDING)
        self._thread = threading.Thread(target=self._run, name="roadmap-api-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, contract: Contract, payload: Payload) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        try:
            self._pending.put_nowait(_Send(contract, payload, loop, done))
        except queue.Full:
            done.set_result(False)
        return done

    def stop(self, timeout_s: float) -> None:
        """Publish what is queued (within ``timeout_s``), then end the thread."""
        with contextlib.suppress(queue.Full):
            self._pending.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            last = False
            while len(batch) < self._max_batch:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                batch.append(more)
            ok = self._publish(batch)
            for send in batch:
                with contextlib.suppress(RuntimeError):  # its loop is already closed
                    send.loop.call_soon_threadsafe(_settle, send.done, ok)
            if last:
                return

    def _publish(self, batch: list[_Send]) -> bool:
        try:
            with self.celery.producer_or_acquire() as producer, producer.batch(len(batch)):
                for send in batch:
                    contracts.send(self.celery, send.contract, send.payload, producer=producer)
        except Exception as exc:  # any broker failure: the reconciler takes over
            log.warning(
                "task send failed; left to the reconciler",
                extra={"tasks": len(batch), "error": type(exc).__name__},
            )
            return False
        return True


class Enqueuer:
    """What request handlers call; each method returns whether the send went out in time."""

    def __init__(self, publisher: Publisher, metrics: ApiMetrics, *, timeout_s: float) -> None:
        self.publisher = publisher
        self._metrics = metrics
        self._timeout_s = timeout_s

    async def _send(self, contract: Contract, payload: Payload) -> bool:
        done = self.publisher.submit(contract, payload)
        try:
            ok = await asyncio.wait_for(asyncio.shield(done), self._timeout_s)
        except TimeoutError:
            ok = False
        if not ok:
            self._metrics.enqueue_failures.labels(contract.name).inc()
        return ok

    async def plan_job(self, job_id: uuid.UUID) -> bool:
        return await self._send(contracts.PLAN_JOB, contracts.PlanJob(job_id=job_id))

    async def apply_review(self, job_id: uuid.UUID, round_id: uuid.UUID) -> bool:
        return await self._send(
            contracts.APPLY_REVIEW, contracts.ApplyReview(job_id=job_id, round_id=round_id)
        )

    async def retry_failed(self, job_id: uuid.UUID) -> bool:
        return await self._send(contracts.RETRY_FAILED, contracts.RetryFailed(job_id=job_id))

    async def regenerate_concept(self, job_id: uuid.UUID, concept_id: uuid.UUID) -> bool:
        return await self._send(
            contracts.REGENERATE_CONCEPT,
            contracts.RegenerateConcept(job_id=job_id, concept_id=concept_id),
        )

    async def cancel_job(self, job_id: uuid.UUID) -> bool:
        return await self._send(contracts.CANCEL_JOB, contracts.CancelJob(job_id=job_id))
