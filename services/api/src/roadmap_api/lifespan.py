"""Build (and tear down) what one API process uses: engine, Redis pools, Celery producer."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from roadmap_api.enqueue import Enqueuer, Publisher
from roadmap_api.logging_setup import configure_logging
from roadmap_api.metrics import ApiMetrics
from roadmap_api.settings import ApiSettings
from roadmap_api.state import AppServices
from roadmap_core import logship
from roadmap_core.celery_app import create_celery_app
from roadmap_db.engine import ProcessDatabase

log = logging.getLogger("roadmap_api.lifespan")

SERVICE_NAME = "roadmap-api"
LOGSHIP_FLUSH_S = 3.0


def redis_pool(
    settings: ApiSettings, *, size: int, read_timeout_s: float
) -> BlockingConnectionPool:
    return BlockingConnectionPool.from_url(
        settings.redis_url,
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
    metrics: ApiMetrics = app.state.metrics
    configure_logging(
        settings.log_level, json_lines=settings.log_json, access_log=settings.access_log
    )
    db = ProcessDatabase(settings, SERVICE_NAME)
    commands = redis_pool(
        settings,
        size=settings.redis_max_connections,
        read_timeout_s=settings.redis_socket_timeout_s,
    )
    # A blocking XREAD waits up to SSE_BLOCK_MS: the socket must wait longer than that.
    streams = redis_pool(
        settings,
        size=settings.sse_max_streams,
        read_timeout_s=settings.sse_block_ms / 1000 + settings.redis_socket_timeout_s,
    )
    celery = create_celery_app(SERVICE_NAME, settings)
    # The API bounds each send itself (ENQUEUE_TIMEOUT_S) and leaves failures to the
    # reconciler; without redis-py's retry-on-timeout, kombu can pipeline the sends that
    # pile up (one round trip per batch instead of one client and round trip per message).
    celery.conf.broker_transport_options = {
        **celery.conf.broker_transport_options,
        "retry_on_timeout": False,
    }
    publisher = Publisher(celery)
    publisher.start()
    # One shipper per process: a second app in the same process (tests) shares the first's.
    shipper = (
        None
        if logship.stats().configured
        else logship.configure_logship(celery, settings, source=SERVICE_NAME)
    )
    app.state.services = AppServices(
        settings=settings,
        metrics=metrics,
        db=db,
        redis=Redis(connection_pool=commands),
        stream_redis=Redis(connection_pool=streams),
        celery=celery,
        enqueuer=Enqueuer(publisher, metrics, timeout_s=settings.enqueue_timeout_s),
        password_limiter=anyio.CapacityLimiter(4),
    )
    await prewarm(db, min(settings.db_pool_prewarm, settings.db_pool_size), settings)
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # garbage collector's full passes, which otherwise walk every module object and add
    # milliseconds to whichever request triggers one.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        services: AppServices = app.state.services
        if shipper is not None:
            await anyio.to_thread.run_sync(shipper.shutdown, LOGSHIP_FLUSH_S)
        await services.redis.aclose()
        await services.stream_redis.aclose()
        await commands.disconnect()
        await streams.disconnect()
        await anyio.to_thread.run_sync(publisher.stop, settings.enqueue_timeout_s)
        await anyio.to_thread.run_sync(celery.close)
        await db.dispose()
