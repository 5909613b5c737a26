"""Roadmap jobs: submit, read, list, and the state changes of docs/jobs.md.

Every change commits first and sends its task after: a task never names a row that did not
commit, and a lost send is redone by the reconciler (the row is the outbox).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api import audit, quotas
from roadmap_api.auth.deps import Principal
from roadmap_api.errors import BadRequest, InvalidState, NotFound, Unauthorized
from roadmap_api.roadmaps import announce
from roadmap_api.roadmaps.schemas import (
    JobAccepted,
    ReviewDecisionIn,
    RoadmapDetail,
    RoadmapPage,
    links_for,
)
from roadmap_api.roadmaps.views import LearnerView, detail_of, summary_of
from roadmap_api.state import AppServices
from roadmap_core import telemetry
from roadmap_core.domain import JobStatus, JobStep, RoadmapRequest
from roadmap_core.ids import new_id
from roadmap_core.logdetails import (
    ItemsRetriedDetails,
    PlanReviewedDetails,
    RoadmapCancelledDetails,
    RoadmapDeletedDetails,
    RoadmapSubmittedDetails,
)
from roadmap_db.models import RoadmapJob, User
from roadmap_db.repositories import (
    frameworks,
    job_actions,
    job_lifecycle,
    job_reads,
    learner_progress,
)
from roadmap_db.repositories.cursor import InvalidCursor
from roadmap_db.repositories.job_actions import NewJob

JOB_NOT_FOUND = "No such roadmap."


async def owned_job(session: AsyncSession, job_id: uuid.UUID, user_id: uuid.UUID) -> RoadmapJob:
    job = await job_reads.get_owned_job(session, job_id, user_id)
    if job is None:
        raise NotFound(JOB_NOT_FOUND)
    return job


async def locked_job(session: AsyncSession, job_id: uuid.UUID, user_id: uuid.UUID) -> RoadmapJob:
    job = await job_actions.lock_owned_job(session, job_id, user_id)
    if job is None:
        raise NotFound(JOB_NOT_FOUND)
    return job


async def submit(services: AppServices, principal: Principal, body: RoadmapRequest) -> JobAccepted:
    """The hot path: a batched statement (owner lock, quotas, INSERT), then a batched send."""
    job_id = new_id()
    telemetry.tag_job(job_id)
    settings = services.settings
    outcome = await services.submitter.submit(
        NewJob(
            job_id=job_id,
            owner_id=principal.user_id,
            request=body.model_dump_json(),
            reserve_tokens=quotas.new_roadmap_tokens(settings, review=body.review),
            token_version=principal.token_version,
        )
    )
    if not outcome.user_ok:
        raise Unauthorized("Unknown or disabled user, or a revoked token.", error="invalid_token")
    if not outcome.created:
        quotas.refuse(
            settings,
            active=outcome.active_jobs,
            tokens_used=outcome.tokens_used,
            tokens_reserved=outcome.tokens_reserved,
            oldest_usage=outcome.oldest_usage,
            jobs_today=outcome.jobs_today,
            oldest_today=outcome.oldest_today,
        )
    audit.job_event(
        "roadmap submitted",
        job_id,
        RoadmapSubmittedDetails(user_id=principal.user_id, review=body.review),
        step="submitted",
    )
    return JobAccepted(id=job_id, status=JobStatus.queued, links=links_for(job_id))


async def detail(session: AsyncSession, user: User, job_id: uuid.UUID) -> RoadmapDetail:
    job = await owned_job(session, job_id, user.id)
    counts = (await job_reads.item_counts_by_job(session, [job.id]))[job.id]
    review = await frameworks.latest_review_round(session, job.id)
    tree = await job_reads.framework_tree(session, job.id)
    learner = LearnerView()
    if tree is not None:
        learner = LearnerView(
            await learner_progress.progress_for_job(session, user_id=user.id, job_id=job.id),
            await learner_progress.quiz_scores_for_job(session, user_id=user.id, job_id=job.id),
        )
    return detail_of(job, counts, review, tree, learner)


async def page(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID | None,
    status: JobStatus | None,
    limit: int,
    cursor: str | None,
    with_owner_emails: bool = False,
) -> job_reads.JobPage:
    try:
        return await job_reads.page_jobs(
            session,
            owner_id=owner_id,
            status=status,
            limit=limit,
            cursor=cursor,
            with_owner_emails=with_owner_emails,
        )
    except InvalidCursor:
        raise BadRequest("Malformed cursor.") from None


async def list_own(
    session: AsyncSession, user: User, *, status: JobStatus | None, limit: int, cursor: str | None
) -> RoadmapPage:
    result = await page(session, owner_id=user.id, status=status, limit=limit, cursor=cursor)
    counts = await job_reads.item_counts_by_job(session, [j.id for j in result.jobs])
    return RoadmapPage(
        items=[summary_of(j, counts[j.id]) for j in result.jobs], next_cursor=result.next_cursor
    )


async def cancel(
    session: AsyncSession, services: AppServices, user: User, job_id: uuid.UUID
) -> JobAccepted:
    job = await locked_job(session, job_id, user.id)
    if not await job_lifecycle.cancel_job(session, job.id):
        raise InvalidState(f"A {job.status} roadmap cannot be cancelled.", status_now=job.status)
    events = await announce.cancelled_events(session, job)
    await session.commit()
    await announce.publish(services, job.id, *events)
    await services.enqueuer.cancel_job(job.id)
    audit.job_event(
        "roadmap cancelled", job.id, RoadmapCancelledDetails(user_id=user.id), step="cancelled"
    )
    return JobAccepted(id=job.id, status=JobStatus.cancelled, links=links_for(job.id))


async def delete(
    session: AsyncSession, services: AppServices, user: User, job_id: uuid.UUID
) -> None:
    job = await locked_job(session, job_id, user.id)
    was_active = await job_lifecycle.cancel_job(session, job.id)
    events = await announce.cancelled_events(session, job) if was_active else []
    await job_actions.mark_deleted(session, job.id)
    await session.commit()
    if was_active:
        await announce.publish(services, job.id, *events)
        await services.enqueuer.cancel_job(job.id)
    audit.job_event(
        "roadmap deleted",
        job.id,
        RoadmapDeletedDetails(user_id=user.id, was_active=was_active),
        step="deleted",
    )


async def retry(
    session: AsyncSession, services: AppServices, user: User, job_id: uuid.UUID
) -> JobAccepted:
    job = await locked_job(session, job_id, user.id)
    count = await job_lifecycle.requeue_failed_items(session, job.id)
    if not count:
        raise InvalidState(
            "Only a roadmap that finished with failed items can be retried.", status_now=job.status
        )
    settings = services.settings
    await quotas.reserve(
        session,
        settings,
        owner_id=user.id,
        job_id=job.id,
        tokens=quotas.items_tokens(settings, count),
    )
    await session.commit()
    await announce.publish(
        services, job.id, announce.status_changed(JobStatus.generating, JobStep.content_generation)
    )
    await services.enqueuer.retry_failed(job.id)
    audit.job_event(
        "failed items retried",
        job.id,
        ItemsRetriedDetails(user_id=user.id, items=count),
        step="retry",
    )
    return JobAccepted(id=job.id, status=JobStatus.generating, links=links_for(job.id))


async def review(
    session: AsyncSession,
    services: AppServices,
    user: User,
    job_id: uuid.UUID,
    body: ReviewDecisionIn,
) -> JobAccepted:
    job = await locked_job(session, job_id, user.id)
    latest = await frameworks.latest_review_round(session, job.id)
    if job.status != JobStatus.awaiting_review or latest is None:
        raise InvalidState("This roadmap is not waiting for a review.", status_now=job.status)
    settings = services.settings
    if body.approve:
        items = await job_lifecycle.approve_review(session, job.id, latest.id)
        decided, tokens = items is not None, quotas.items_tokens(settings, items or 0)
        new_status, new_step = JobStatus.generating, JobStep.content_generation
    else:
        decided = await job_lifecycle.request_changes(
            session, job.id, latest.id, body.feedback or ""
        )
        tokens = quotas.revision_tokens(settings)
        new_status, new_step = JobStatus.queued, JobStep.revision
    if not decided:
        raise InvalidState("There is no proposed plan waiting for a decision.")
    # Approving starts the content; feedback starts a revised plan: both make the LLM work.
    await quotas.reserve(session, settings, owner_id=user.id, job_id=job.id, tokens=tokens)
    await session.commit()
    await announce.publish(services, job.id, announce.status_changed(new_status, new_step))
    await services.enqueuer.apply_review(job.id, latest.id)
    audit.job_event(
        "plan approved" if body.approve else "plan changes requested",
        job.id,
        PlanReviewedDetails(user_id=user.id, round=latest.round, approve=body.approve),
        step="review",
    )
    return JobAccepted(id=job.id, status=new_status, links=links_for(job.id))
