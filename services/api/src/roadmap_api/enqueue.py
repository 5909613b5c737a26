"""Send tasks after commit, from the event loop.

A send encodes its task messages here (``roadmap_core.task_wire``: the messages a Celery
worker expects, built without kombu's synchronous producer) and pushes them in one Redis
round trip, one LPUSH per queue, waiting at most ``ENQUEUE_TIMEOUT_S``. The submits of a
whole batch (``roadmaps/submits.py``) go out in one such send.

A send that fails or times out is logged and counted, never raised: its rows are already
committed with ``enqueued_at`` set, and the reconciler sends them again once that is stale.
Callers only get here after their transaction committed, so nothing is ever sent for a
row that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence

from celery import Celery
from redis.asyncio import Redis
from redis.exceptions import RedisError

from roadmap_api.metrics import ApiMetrics
from roadmap_core import contracts, task_wire
from roadmap_core.contracts import Contract, Payload
from roadmap_core.task_wire import WireMessage

log = logging.getLogger("roadmap_api.enqueue")


class Enqueuer:
    """What request handlers call; each method returns whether the send went out in time."""

    def __init__(
        self, celery: Celery, broker: Redis, metrics: ApiMetrics, *, timeout_s: float
    ) -> None:
        self._celery = celery
        self._broker = broker
        self._metrics = metrics
        self._timeout_s = timeout_s

    async def send(
        self,
        tasks: Sequence[tuple[Contract, Payload]],
        traces: Sequence[Mapping[str, str] | None] | None = None,
    ) -> bool:
        """``traces``: per task, the trace context to carry (else the current one)."""
        contexts = traces if traces is not None else [None] * len(tasks)
        messages = [
            task_wire.encode(self._celery, c, p, t)
            for (c, p), t in zip(tasks, contexts, strict=True)
        ]
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._push(messages)
        except (TimeoutError, RedisError, OSError) as exc:  # the reconciler takes over
            log.warning(
                "task send failed; left to the reconciler",
                extra={"tasks": len(messages), "error": type(exc).__name__},
            )
            for message in messages:
                self._metrics.enqueue_failures.labels(message.task).inc()
            return False
        return True

    async def _push(self, messages: list[WireMessage]) -> None:
        by_queue: dict[str, list[bytes]] = {}
        for message in messages:
            by_queue.setdefault(message.queue, []).append(message.data)
        # LPUSH of several values puts the last at the head; workers pop from the tail, so
        # the messages still leave in the order they were sent.
        async with self._broker.pipeline(transaction=False) as pipe:
            for queue, data in by_queue.items():
                pipe.lpush(queue, *data)
            await pipe.execute()

    async def _send(self, contract: Contract, payload: Payload) -> bool:
        return await self.send([(contract, payload)])

    async def plan_jobs(
        self,
        job_ids: Sequence[uuid.UUID],
        traces: Sequence[Mapping[str, str] | None] | None = None,
    ) -> bool:
        """``traces``: the context of the request that submitted each job (a batch's send
        runs for many requests)."""
        return await self.send(
            [(contracts.PLAN_JOB, contracts.PlanJob(job_id=j)) for j in job_ids], traces
        )

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

    async def answer_chat(self, job_id: uuid.UUID, message_id: uuid.UUID) -> bool:
        return await self._send(
            contracts.ANSWER_CHAT, contracts.AnswerChat(job_id=job_id, message_id=message_id)
        )
