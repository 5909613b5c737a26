"""LLM calls: one row per request, summed onto the job's totals.

Content calls are recorded in the transaction that stores their item's outcome
(:func:`roadmap_db.repositories.item_results.save_item_result`), so the job's
totals, its ``llm_calls`` rows and its results always agree; other calls
(planning) are recorded on their own with :func:`record_llm_calls`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_db.models import LLMCall, RoadmapJob


@dataclass(frozen=True, slots=True)
class CallUsage:
    job_id: uuid.UUID
    step: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    duration_ms: float
    item_id: uuid.UUID | None = None


def job_totals_increment(calls: Sequence[CallUsage]) -> dict[str, Any]:
    """``UPDATE roadmap_jobs SET …`` values adding ``calls`` to a job's usage totals."""
    return {
        "prompt_tokens": RoadmapJob.prompt_tokens + sum(c.prompt_tokens for c in calls),
        "completion_tokens": RoadmapJob.completion_tokens + sum(c.completion_tokens for c in calls),
        "cost_usd": RoadmapJob.cost_usd + sum((c.cost_usd for c in calls), Decimal(0)),
        "llm_calls": RoadmapJob.llm_calls + len(calls),
    }


async def insert_llm_calls(session: AsyncSession, calls: Sequence[CallUsage]) -> None:
    """Insert the call rows only (the caller adds them to the job's totals)."""
    if not calls:
        return
    await session.execute(
        insert(LLMCall),
        [
            {
                "job_id": c.job_id,
                "item_id": c.item_id,
                "step": c.step[:64],
                "model": c.model[:100],
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "cost_usd": c.cost_usd,
                "duration_ms": c.duration_ms,
            }
            for c in calls
        ],
    )


async def record_llm_calls(session: AsyncSession, calls: Sequence[CallUsage]) -> None:
    """Insert the calls and add their tokens, cost and count to each job's totals."""
    if not calls:
        return
    await insert_llm_calls(session, calls)
    by_job: dict[uuid.UUID, list[CallUsage]] = {}
    for c in calls:
        by_job.setdefault(c.job_id, []).append(c)
    # Sorted ids: two processes adding usage to the same jobs lock rows in one order.
    for job_id in sorted(by_job):
        await session.execute(
            update(RoadmapJob)
            .where(RoadmapJob.id == job_id)
            .values(**job_totals_increment(by_job[job_id]))
            .execution_options(synchronize_session=False)
        )
