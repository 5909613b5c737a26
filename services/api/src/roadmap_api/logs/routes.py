"""``/api/v1/roadmaps/{id}/logs``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from roadmap_api.auth.deps import CurrentUser
from roadmap_api.db import SessionDep
from roadmap_api.logs import service
from roadmap_api.logs.schemas import LogPage
from roadmap_api.responses import AUTH_ERRORS, errors
from roadmap_core.domain import LogLevel
from roadmap_core.text import STORABLE

router = APIRouter(prefix="/api/v1/roadmaps", tags=["logs"])


@router.get(
    "/{roadmap_id}/logs",
    operation_id="roadmap_logs_list",
    responses={**AUTH_ERRORS, **errors(400, 404, 422)},
)
async def get_logs(
    roadmap_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    level: Annotated[LogLevel | None, Query(description="minimum level")] = None,
    after: Annotated[str | None, Query(max_length=512, description="next_cursor"), STORABLE] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> LogPage:
    """Execution logs of the roadmap in the order they happened."""
    return await service.job_logs(session, user, roadmap_id, level=level, after=after, limit=limit)
