"""Build (and tear down) what one API process uses: engine, Redis pools, task sender."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from roadmap_api.auth.tokens import AccessTokens
from roadmap_api.enqueue import Enqueuer
from roadmap_api.logging_setup import configure_logging
from roadmap_api.metrics import ApiMetrics
from roadmap_api.roadmaps.stream_slots import StreamSlots, stream_pool_size
from roadmap_api.roadmaps.submits import JobSubmitter
from roadmap_api.settings import ApiSettings
from roadmap_api.state import AppServices
from roadmap_core import logship, telemetry
from roadmap_core.celery_app import create_celery_app
from roadmap_core.gc_freeze import freeze_startup_objects
from roadmap_core.metrics import processes
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.job_actions import QuotaLimits

log = logging.getLogger("roadmap_api.lifespan")

SERVICE_NAME = "roadmap-api"
LOGSHIP_FLUSH_S = 3.0


BROKER_CONNECTIONS = 4  # batched pushes: a few connections carry any request rate
# How long a stream's per-user slot outlives a process that died without releasing it.
STREAM_LEASE_S = 60.0


def redis_pool(
    settings: ApiSettings, *, size: int, read_timeout_s: float, url: str | None = None
) -> BlockingConnectionPool:
    return BlockingConnectionPool.from_url(
        url or settings.redis_url,
        max_connections=size,
        timeout=settings.redis_pool_timeout_s,
        socket_timeout=read_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
        health_check_interval=30,
    )


async def prewarm(db: ProcessDatabase, count: int, settings: ApiSettings) -> None:
    """Open ``count`` pool connections now; a database that is down only gets logged."""
    if count <= 0:
        return
    opened: list[AsyncConnection] = []

    async def open_one() -> None:
        opened.append(await db.engine.connect().start())

    try:
        with anyio.fail_after(settings.db_connect_timeout_s + 1):
            async with anyio.create_task_group() as group:
                for _ in range(count):
                    group.start_soon(open_one)
    except Exception as exc:  # not ready yet: /readyz says so, requests answer 503
        log.warning(
            "could not open the database pool at startup", extra={"error": type(exc).__name__}
        )
    finally:
        for conn in opened:
            await conn.close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ApiSettings = app.state.settings
    configure_logging(
        settings.log_level, json_lines=settings.log_json, access_log=settings.access_log
    )
    if settings.metrics_multiprocess:
        processes.enable(SERVICE_NAME)
    telemetry.setup(SERVICE_NAME)
    metrics = app.state.metrics = ApiMetrics()
    db = ProcessDatabase(settings, SERVICE_NAME)
    commands = redis_pool(
        settings,
        size=settings.redis_max_connections,
        read_timeout_s=settings.redis_socket_timeout_s,
    )
    # A blocking XREAD waits up to SSE_BLOCK_MS: the socket must wait longer than that.
    streams = redis_pool(
        settings,
        size=stream_pool_size(settings.sse_max_streams),
        read_timeout_s=settings.sse_block_ms / 1000 + settings.redis_socket_timeout_s,
    )
    broker = redis_pool(
        settings,
        size=BROKER_CONNECTIONS,
        read_timeout_s=settings.redis_socket_timeout_s,
        url=settings.broker_url,
    )
    broker_client = Redis(connection_pool=broker)
    celery = create_celery_app(SERVICE_NAME, settings)
    # One shipper per process: a second app in the same process (tests) shares the first's.
    shipper = (
        None
        if logship.stats().configured
        else logship.configure_logship(celery, settings, source=SERVICE_NAME)
    )
    enqueuer = Enqueuer(celery, broker_client, metrics, timeout_s=settings.enqueue_timeout_s)
    redis = Redis(connection_pool=commands)
    app.state.services = AppServices(
        settings=settings,
        metrics=metrics,
        db=db,
        redis=redis,
        stream_redis=Redis(connection_pool=streams),
        stream_slots=StreamSlots(
            redis,
            max_streams=settings.sse_max_streams,
            per_user=settings.sse_max_streams_per_user,
            # Renewed every third of it; a stream loops at least every SSE_BLOCK_MS.
            lease_s=max(STREAM_LEASE_S, 3 * settings.sse_block_ms / 1000),
        ),
        celery=celery,
        broker=broker_client,
        enqueuer=enqueuer,
        access_tokens=AccessTokens(settings),
        submitter=JobSubmitter(
            db,
            enqueuer,
            QuotaLimits(
                max_active_jobs=settings.quota_max_active_jobs,
                jobs_per_day=settings.quota_jobs_per_day,
                tokens_per_day=settings.quota_tokens_per_day,
            ),
        ),
        password_limiter=anyio.CapacityLimiter(4),
    )
    await prewarm(db, min(settings.db_pool_prewarm, settings.db_pool_size), settings)
    # Everything built so far lives as long as the process: a full collection pass would
    # otherwise walk it all and add milliseconds to whichever request triggers one.
    freeze_startup_objects()
    try:
        yield
    finally:
        services: AppServices = app.state.services
        await services.submitter.aclose()
        if shipper is not None:
            await anyio.to_thread.run_sync(shipper.shutdown, LOGSHIP_FLUSH_S)
        for client in (services.redis, services.stream_redis, services.broker):
            await client.aclose()
        for pool in (commands, streams, broker):
            await pool.disconnect()
        await anyio.to_thread.run_sync(celery.close)
        await db.dispose()
        processes.process_exited()
        await anyio.to_thread.run_sync(telemetry.shutdown)
