"""``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from roadmap_api.db import ServicesDep
from roadmap_api.health import service
from roadmap_api.health.schemas import Alive, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Alive:
    """The process is up (checks nothing else)."""
    return Alive()


@router.get(
    "/readyz",
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
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: request latency by route, jobs by status, queue depths."""
    return Response(await service.scrape(services), media_type=CONTENT_TYPE_LATEST)
