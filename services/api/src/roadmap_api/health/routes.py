"""``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from roadmap_api.db import ServicesDep
from roadmap_api.errors import NotFound, Unauthorized
from roadmap_api.health import service
from roadmap_api.health.schemas import Alive, Readiness
from roadmap_api.responses import errors
from roadmap_core.metrics.exposition import bearer_matches

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="health_live")
async def healthz() -> Alive:
    """The process is up (checks nothing else)."""
    return Alive()


@router.get(
    "/readyz",
    operation_id="health_ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready; `checks` says why"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """Database, Redis, and a recent heartbeat from each worker type."""
    result = await service.readiness(services)
    return JSONResponse(
        result.model_dump(mode="json"), status_code=200 if result.status == "ready" else 503
    )


@router.get(
    "/metrics",
    operation_id="metrics_scrape",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **errors(401, 404),
    },
)
async def metrics(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """Prometheus metrics of every API process: request latency by route, enqueue
    failures, jobs by status, queue depths and ages.

    Only for a scraper holding ``METRICS_TOKEN`` (``Authorization: Bearer <token>``);
    without that setting metrics are not served at all (404).
    """
    expected = services.settings.metrics_token
    if expected is None:
        raise NotFound("Metrics are not served (METRICS_TOKEN is not set).")
    if not bearer_matches(authorization, expected):
        raise Unauthorized("Metrics need the scrape token.")
    return Response(await service.scrape(services), media_type=CONTENT_TYPE_LATEST)
