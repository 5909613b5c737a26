"""``/api/v1/roadmaps``: submit, list, read, follow, review, cancel, retry, delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from sse_starlette import EventSourceResponse

from roadmap_api.auth.deps import CurrentUser, PrincipalDep
from roadmap_api.db import ServicesDep, SessionDep
from roadmap_api.responses import AUTH_ERRORS, errors
from roadmap_api.roadmaps import events, service
from roadmap_api.roadmaps.schemas import JobAccepted, ReviewDecisionIn, RoadmapDetail, RoadmapPage
from roadmap_api.state import services_of
from roadmap_core.domain import JobStatus, RoadmapRequest
from roadmap_core.text import STORABLE

router = APIRouter(prefix="/api/v1/roadmaps", tags=["roadmaps"])

Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page"), STORABLE
]
Limit = Annotated[int, Query(ge=1, le=100)]

ID_ERRORS = {**AUTH_ERRORS, **errors(404, 422)}
STATE_ERRORS = {**ID_ERRORS, **errors(409)}
# Routes that make the LLM work answer 429 when a quota refuses it (roadmap_api.quotas).
SPENDING_ERRORS = {**STATE_ERRORS, **errors(429)}


@router.post(
    "",
    operation_id="roadmaps_create",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={**AUTH_ERRORS, **errors(413, 422, 429)},
)
async def submit_roadmap(
    body: RoadmapRequest, request: Request, principal: PrincipalDep
) -> Response:
    """Queue a new roadmap. Answers at once; follow ``links.events`` or poll ``links.self``."""
    accepted = await service.submit(services_of(request), principal, body)
    # The busiest endpoint: serialised here once, instead of validated again by FastAPI.
    return Response(
        accepted.model_dump_json(),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
        headers={"Location": accepted.links.self},
    )


@router.get("", operation_id="roadmaps_list", responses={**AUTH_ERRORS, **errors(400, 422)})
async def list_roadmaps(
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[JobStatus | None, Query()] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> RoadmapPage:
    """Your roadmaps, newest first."""
    return await service.list_own(session, user, status=status, limit=limit, cursor=cursor)


@router.get("/{roadmap_id}", operation_id="roadmaps_get", responses=ID_ERRORS)
async def get_roadmap(
    roadmap_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> RoadmapDetail:
    """Status, progress, usage, the request and (once planned) the framework."""
    return await service.detail(session, user, roadmap_id)


@router.get(
    "/{roadmap_id}/events",
    operation_id="roadmap_events_follow",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `snapshot`, then `status`, `step`, `item`,"
            " `review_required`, and one of `completed`/`failed`/`cancelled` last. Event ids"
            " are stream positions: reconnect with `Last-Event-ID` to resume.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        204: {"description": "The client already saw the end of this finished roadmap's stream"},
        **ID_ERRORS,
        **errors(400, 429, 503),
    },
)
async def follow_roadmap(
    roadmap_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    last_event_id: Annotated[
        str | None,
        Header(
            description="Resume right after this event: the `id:` of the last event received"
            " (`<ms>-<seq>`). Anything else answers 400; at or after a finished roadmap's"
            " terminal event, 204."
        ),
    ] = None,
) -> Response:
    try:
        plan = await events.plan_stream(
            session, services, owner_id=user.id, job_id=roadmap_id, last_event_id=last_event_id
        )
    except events.NothingLeft:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    plan.owner = events.StreamOwner(user.id, user.token_version)
    plan.lease = await services.stream_slots.acquire(user.id)
    return events.StreamResponse(services, plan)


@router.post(
    "/{roadmap_id}/review",
    operation_id="roadmaps_review",
    status_code=status.HTTP_202_ACCEPTED,
    responses=SPENDING_ERRORS,
)
async def review_roadmap(
    roadmap_id: uuid.UUID,
    body: ReviewDecisionIn,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> JobAccepted:
    """Approve the proposed plan, or send feedback for a revised one (409 unless awaiting review)."""
    return await service.review(session, services, user, roadmap_id, body)


@router.post(
    "/{roadmap_id}/cancel",
    operation_id="roadmaps_cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=STATE_ERRORS,
)
async def cancel_roadmap(
    roadmap_id: uuid.UUID, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> JobAccepted:
    """Stop the work of an active roadmap (409 once it has ended)."""
    return await service.cancel(session, services, user, roadmap_id)


@router.post(
    "/{roadmap_id}/retry",
    operation_id="roadmaps_retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses=SPENDING_ERRORS,
)
async def retry_roadmap(
    roadmap_id: uuid.UUID, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> JobAccepted:
    """Generate the failed items again (409 unless the roadmap ended in ``partial_failure``)."""
    return await service.retry(session, services, user, roadmap_id)


@router.delete(
    "/{roadmap_id}",
    operation_id="roadmaps_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ID_ERRORS,
)
async def delete_roadmap(
    roadmap_id: uuid.UUID, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> Response:
    """Delete the roadmap (soft delete); running work is cancelled."""
    await service.delete(session, services, user, roadmap_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
