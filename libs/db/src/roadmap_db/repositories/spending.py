"""LLM work under the owner's quotas: reserve it when it starts; it settles by itself.

Every route that makes the LLM work calls :func:`reserve_work` in the transaction that
starts the work (after the job's transition, before the commit that precedes sending its
task); a refusal rolls the transaction back, so nothing was changed or sent. New
roadmaps do the same inside ``roadmap_submit_jobs`` (:func:`job_actions.create_jobs`).

``roadmap_reserve_work`` (migration 0006) locks the owner's row, so concurrent requests of
one owner are checked one after the other, then admits the work while

* the owner's unfinished roadmaps other than this one are fewer than ``max_active``, and
* the tokens of the last 24 hours (``token_usage``) plus what all their roadmaps still
  have reserved (``roadmap_jobs.tokens_reserved``; a finished roadmap holds a reservation
  while a chat answer on it is written, migration 0011) are below ``tokens_per_day``;

and adds ``tokens`` (an estimate) to the job's reservation. Settling is nobody's chore: a
trigger adds every token a job's totals grow by to the owner's hour and takes it off the
job's reservation, and zeroes the reservation when the job comes to rest or ends (a worker
finishing it, the reconciler after a worker died, a cancel), so from then on only its real
usage counts.

A later spending route (a mentor chat turn, say) reserves the same way, on the roadmap its
work is for, and records its usage on that roadmap's totals. If its work does not move
the roadmap's status, it also takes what is left of its estimate off ``tokens_reserved``
when it ends.
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
    job_id: uuid.UUID,
    tokens: int,
    limits: WorkLimits,
) -> Reservation:
    """Reserve ``tokens`` for work on the owner's ``job_id`` if their quotas allow it."""
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
