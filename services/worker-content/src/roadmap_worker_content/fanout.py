"""Fan-out: one ``content.generate_concepts`` message per batch of concepts.

Sending is blocking (kombu); it runs in a task's own thread or, from async
code, through ``asyncio.to_thread``. It happens only after the transaction
that queued the items committed: if it fails, the reconciler re-sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from celery import Celery

from roadmap_core.contracts import GENERATE_CONCEPTS, GenerateConcepts, send


def batches(concept_ids: Sequence[uuid.UUID], size: int) -> list[list[uuid.UUID]]:
    return [list(concept_ids[i : i + size]) for i in range(0, len(concept_ids), size)]


def send_concept_batches(
    app: Celery, job_id: uuid.UUID, concept_ids: Sequence[uuid.UUID], size: int
) -> int:
    """Send every batch through one producer; returns how many messages went out."""
    sent = 0
    with app.producer_or_acquire() as producer:
        for batch in batches(concept_ids, size):
            payload = GenerateConcepts(job_id=job_id, concept_ids=batch)
            send(app, GENERATE_CONCEPTS, payload, producer=producer)
            sent += 1
    return sent
