"""Operator views: queue health and every user's roadmaps."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api import queues
from roadmap_api.admin.schemas import QueueOut, QueuesOut, WorkerOut
from roadmap_api.roadmaps.schemas import AdminRoadmapPage, AdminRoadmapSummary
from roadmap_api.roadmaps.service import page
from roadmap_api.roadmaps.views import summary_fields
from roadmap_api.state import AppServices
from roadmap_core.domain import JobStatus
from roadmap_db.repositories import job_reads


async def queue_report(services: AppServices) -> QueuesOut:
    depth = await queues.depths(services.broker)
    ages = await queues.oldest_ages(services.broker)
    seen = await queues.workers(services.redis)
    return QueuesOut(
        queues=[QueueOut(name=q, depth=depth[q], oldest_age_s=ages[q]) for q in depth],
        workers={
            t.value: [
                WorkerOut(
                    instance=w["instance"],
                    last_seen_s=round(w["last_seen_s"] or 0.0, 3),
                    info=w["info"],
                )
                for w in instances
            ]
            for t, instances in seen.items()
        },
    )


async def all_roadmaps(
    session: AsyncSession, *, status: JobStatus | None, limit: int, cursor: str | None
) -> AdminRoadmapPage:
    result = await page(
        session, owner_id=None, status=status, limit=limit, cursor=cursor, with_owner_emails=True
    )
    counts = await job_reads.item_counts_by_job(session, [j.id for j in result.jobs])
    return AdminRoadmapPage(
        items=[
            AdminRoadmapSummary.model_validate(
                {
                    **summary_fields(j, counts[j.id]),
                    "owner_id": j.owner_id,
                    "owner_email": result.owners.get(j.owner_id),
                }
            )
            for j in result.jobs
        ],
        next_cursor=result.next_cursor,
    )
