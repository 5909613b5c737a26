"""``/api/v1/admin/*`` (administrators only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from roadmap_api.admin import service
from roadmap_api.admin.schemas import QueuesOut
from roadmap_api.auth.deps import AdminUser
from roadmap_api.db import ServicesDep, SessionDep
from roadmap_api.responses import AUTH_ERRORS, errors
from roadmap_api.roadmaps.schemas import AdminRoadmapPage
from roadmap_core.domain import JobStatus
from roadmap_core.text import STORABLE

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

ADMIN_ERRORS = {**AUTH_ERRORS, **errors(403)}


@router.get("/queues", operation_id="admin_queues_get", responses={**ADMIN_ERRORS, **errors(503)})
async def get_queues(admin: AdminUser, services: ServicesDep) -> QueuesOut:
    """Depth and oldest-message age of each queue, and the workers seen recently."""
    return await service.queue_report(services)


@router.get(
    "/roadmaps", operation_id="admin_roadmaps_list", responses={**ADMIN_ERRORS, **errors(400, 422)}
)
async def list_all_roadmaps(
    admin: AdminUser,
    session: SessionDep,
    status: Annotated[JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512), STORABLE] = None,
) -> AdminRoadmapPage:
    """Every user's roadmaps, newest first."""
    return await service.all_roadmaps(session, status=status, limit=limit, cursor=cursor)
