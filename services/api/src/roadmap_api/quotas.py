"""Per-user quotas on LLM work: what each kind of work reserves, and the 429 when refused.

Every route that makes the LLM work goes through one check, in the transaction that
starts the work (after the job's transition, before its commit):

    await quotas.reserve(session, settings, owner_id=..., job_id=..., tokens=...)

``tokens`` is the estimate of the work (the ``*_tokens`` helpers below, from the
``QUOTA_RESERVE_*`` settings). The check (``roadmap_db.repositories.spending``) locks the
owner, so concurrent requests cannot pass together; a refusal raises ``QuotaExceeded`` and
the transaction rolls back. New roadmaps are checked the same way inside their batched
insert (``roadmaps/submits.py``). Nothing has to be settled by the route: the database
replaces the estimate with the real usage when the work rests or ends.

Routes that spend today: ``POST /roadmaps`` (planning, and content unless reviewed),
``POST /roadmaps/{id}/review`` (approve: the content; feedback: a revised plan),
``POST /roadmaps/{id}/retry`` and ``POST /roadmaps/{id}/concepts/{id}/regenerate`` (items),
``POST /roadmaps/{id}/chat/messages`` (one answer: :func:`reserve_chat`; the chat worker
gives back what the answer did not use).
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api.errors import QuotaExceeded, Unauthorized
from roadmap_api.settings import ApiSettings
from roadmap_db.repositories.spending import WorkLimits, reserve_work

# An hour of usage stops counting once the hour after it began more than a day ago.
USAGE_COUNTED_FOR = timedelta(hours=25)


def new_roadmap_tokens(settings: ApiSettings, *, review: bool) -> int:
    """A new roadmap: its planning only when the plan is reviewed first, else everything."""
    return settings.quota_reserve_plan_tokens if review else settings.quota_reserve_roadmap_tokens


def revision_tokens(settings: ApiSettings) -> int:
    return settings.quota_reserve_plan_tokens


def items_tokens(settings: ApiSettings, items: int) -> int:
    return settings.quota_reserve_item_tokens * items


def work_limits(settings: ApiSettings) -> WorkLimits:
    return WorkLimits(
        max_active=settings.quota_max_active_jobs, tokens_per_day=settings.quota_tokens_per_day
    )


async def reserve(
    session: AsyncSession,
    settings: ApiSettings,
    *,
    owner_id: uuid.UUID,
    job_id: uuid.UUID,
    tokens: int,
) -> None:
    """Reserve ``tokens`` of LLM work for ``job_id``, or raise the quota that refuses it."""
    outcome = await reserve_work(
        session, owner_id=owner_id, job_id=job_id, tokens=tokens, limits=work_limits(settings)
    )
    if not outcome.user_ok:
        raise Unauthorized("Unknown or disabled user.", error="invalid_token")
    if not outcome.reserved:
        refuse(
            settings,
            active=outcome.active_work,
            tokens_used=outcome.tokens_used,
            tokens_reserved=outcome.tokens_reserved,
            oldest_usage=outcome.oldest_usage,
        )


# A chat answer is not a roadmap in progress: the active-roadmaps quota does not apply.
_NO_ACTIVE_LIMIT = 2**31 - 1


async def reserve_chat(
    session: AsyncSession,
    settings: ApiSettings,
    *,
    owner_id: uuid.UUID,
    job_id: uuid.UUID,
    tokens: int,
) -> None:
    """Reserve one chat answer's tokens on its roadmap under the daily token quota."""
    outcome = await reserve_work(
        session,
        owner_id=owner_id,
        job_id=job_id,
        tokens=tokens,
        limits=WorkLimits(
            max_active=_NO_ACTIVE_LIMIT, tokens_per_day=settings.quota_tokens_per_day
        ),
    )
    if not outcome.user_ok:
        raise Unauthorized("Unknown or disabled user.", error="invalid_token")
    if not outcome.reserved:
        refuse(
            settings,
            active=0,
            tokens_used=outcome.tokens_used,
            tokens_reserved=outcome.tokens_reserved,
            oldest_usage=outcome.oldest_usage,
        )


def refuse(
    settings: ApiSettings,
    *,
    active: int,
    tokens_used: int,
    tokens_reserved: int,
    oldest_usage: datetime | None,
    jobs_today: int = 0,
    oldest_today: datetime | None = None,
) -> NoReturn:
    """Raise the first quota the counts exceed (active work, roadmaps per day, tokens)."""
    now = datetime.now(UTC)
    if active >= settings.quota_max_active_jobs:
        raise QuotaExceeded(
            f"You have {active} roadmaps in progress (limit {settings.quota_max_active_jobs});"
            " wait for one to finish or cancel one.",
            retry_after_s=settings.quota_active_retry_after_s,
            quota="active_jobs",
            limit=settings.quota_max_active_jobs,
        )
    if jobs_today >= settings.quota_jobs_per_day:
        oldest = oldest_today or now
        raise QuotaExceeded(
            f"Daily limit of {settings.quota_jobs_per_day} roadmaps reached.",
            retry_after_s=_seconds_until(oldest + timedelta(days=1), now),
            quota="jobs_per_day",
            limit=settings.quota_jobs_per_day,
        )
    if tokens_used >= settings.quota_tokens_per_day and oldest_usage is not None:
        retry = _seconds_until(oldest_usage + USAGE_COUNTED_FOR, now)
    else:  # work in flight holds the rest: it frees up when that work rests or ends
        retry = settings.quota_active_retry_after_s
    raise QuotaExceeded(
        f"Daily limit of {settings.quota_tokens_per_day} LLM tokens reached ({tokens_used}"
        f" used in the last 24 hours, {tokens_reserved} reserved for work in progress).",
        retry_after_s=retry,
        quota="tokens_per_day",
        limit=settings.quota_tokens_per_day,
    )


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))
