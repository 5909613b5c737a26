"""Typed client of the Roadmap Agent API.

``RoadmapClient`` (blocking) and ``AsyncRoadmapClient`` (asyncio) have one method per
operation; responses are the pydantic models of ``roadmap_client.models`` (generated from
the API's OpenAPI document), errors the exceptions of ``roadmap_client.errors``, and
``events()`` follows a roadmap's Server-Sent Events with ``Last-Event-ID`` resume.
"""

from roadmap_client import models
from roadmap_client.client import OPERATIONS, AsyncRoadmapClient, RoadmapClient
from roadmap_client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    StreamLost,
    Unauthenticated,
    ValidationFailed,
)
from roadmap_client.events import Event, EventData
from roadmap_client.models import ConceptNode, RoadmapDetail

__all__ = [
    "OPERATIONS",
    "ApiError",
    "AsyncRoadmapClient",
    "BadRequest",
    "Conflict",
    "Event",
    "EventData",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "RoadmapClient",
    "ServiceUnavailable",
    "StreamLost",
    "Unauthenticated",
    "ValidationFailed",
    "concepts_of",
    "models",
]


def concepts_of(roadmap: RoadmapDetail) -> list[ConceptNode]:
    """Every concept of the roadmap's framework in order (empty before it is planned)."""
    if roadmap.framework is None:
        return []
    return [c for s in roadmap.framework.stages for m in s.modules for c in m.concepts]
