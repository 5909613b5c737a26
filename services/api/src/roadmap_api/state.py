"""What the lifespan builds once per process and every request uses."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from celery import Celery
from fastapi import Request
from redis.asyncio import Redis

from roadmap_api.auth.tokens import AccessTokens
from roadmap_api.enqueue import Enqueuer
from roadmap_api.metrics import ApiMetrics
from roadmap_api.roadmaps.stream_slots import StreamSlots
from roadmap_api.roadmaps.submits import JobSubmitter
from roadmap_api.settings import ApiSettings
from roadmap_db.engine import ProcessDatabase


@dataclass(slots=True)
class AppServices:
    settings: ApiSettings
    metrics: ApiMetrics
    db: ProcessDatabase
    redis: Redis
    # Blocking stream reads of SSE clients get their own pool so they cannot starve others.
    stream_redis: Redis
    # How many of those streams may be open (per process and per user).
    stream_slots: StreamSlots
    # The Celery queues' Redis (BROKER_URL, by default the same server as ``redis``).
    broker: Redis
    celery: Celery
    access_tokens: AccessTokens
    enqueuer: Enqueuer
    submitter: JobSubmitter
    # argon2id takes 19 MiB and tens of ms per hash: bound how many run at once.
    password_limiter: anyio.CapacityLimiter


def services_of(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


async def get_services(request: Request) -> AppServices:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread.
    return services_of(request)
