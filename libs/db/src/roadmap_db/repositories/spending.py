"""LLM work under the owner's quotas: reserve it when it starts; it settles by itself.

Every route that makes the LLM work calls :func:`reserve_work` in the transaction that
starts the work (after the job's transition, before the commit that precedes sending its
task); a refusal rolls the transaction back, so nothing was changed or sent. New
roadmaps do the same inside ``roadmap_submit_jobs`` (:func:`job_actions.create_jobs`).

``roadmap_reserve_work`` (migration 0005) locks the owner's row, so concurrent requests of
one owner are checked one after the other, then admits the work while

* the owner's active work other than this job (unfinished jobs, plus reservations of
  work that is not a job's) is below ``max_active``, and
* the tokens of the last 24 hours plus what work in flight still has reserved are below
  ``tokens_per_day``;

and records ``tokens`` (an estimate) as reserved for the job (added to its reservation
if it is already working). Settling is nobody's chore: triggers add every token a job's
totals grow by to the owner's usage and to its reservation, and delete the reservation
when the job comes to rest or ends (a worker finishing it, the reconciler after a worker
died, a cancel), so from then on its real usage counts instead of the estimate.

A future spending route (a mentor chat turn, say) reserves the same way: with its job,
or with ``job_id=None`` for work of its own, which then counts as one piece of active
work until its reservation is deleted when it ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class WorkLimits:
    max_active: int
    tokens_per_day: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``roadmap_reserve_work`` found and did; the counts are those it checked."""

    user_ok: bool
    reserved: bool
    active_work: int = 0
    tokens_used: int = 0
    tokens_reserved: int = 0
    oldest_usage: datetime | None = None


_RESERVE = text(
    "SELECT user_ok, reserved, active_work, tokens_used, tokens_reserved, oldest_usage"
    " FROM roadmap_reserve_work(:owner_id, :job_id, :tokens, :max_active, :max_tokens)"
)


async def reserve_work(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID,
    job_id: uuid.UUID | None,
    tokens: int,
    limits: WorkLimits,
) -> Reservation:
    """Reserve ``tokens`` for work on ``job_id`` if the owner's quotas allow it."""
    row = (
        await session.execute(
            _RESERVE,
            {
                "owner_id": owner_id,
                "job_id": job_id,
                "tokens": max(0, tokens),
                "max_active": limits.max_active,
                "max_tokens": limits.tokens_per_day,
            },
        )
    ).one()
    return Reservation(
        user_ok=bool(row.user_ok),
        reserved=bool(row.reserved),
        active_work=int(row.active_work),
        tokens_used=int(row.tokens_used),
        tokens_reserved=int(row.tokens_reserved),
        oldest_usage=row.oldest_usage,
    )
