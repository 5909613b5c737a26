"""Readiness checks (each bounded by ``READYZ_TIMEOUT_S``) and the Prometheus scrape."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

import anyio
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from roadmap_api import queues
from roadmap_api.health.schemas import Check, Readiness
from roadmap_api.state import AppServices
from roadmap_core.heartbeat import HEARTBEAT_TTL_S, WorkerType
from roadmap_core.metrics.exposition import render
from roadmap_core.metrics.queues import queue_families
from roadmap_db.repositories import job_reads


async def _timed(timeout_s: float, check: Callable[[], Awaitable[str | None]]) -> Check:
    start = time.perf_counter()
    try:
        with anyio.fail_after(timeout_s):
            detail = await check()
    except TimeoutError:
        return Check(ok=False, detail=f"no answer within {timeout_s}s")
    except Exception as exc:  # any failure means "not ready"; the type says which
        return Check(ok=False, detail=type(exc).__name__)
    return Check(ok=True, detail=detail, duration_ms=round((time.perf_counter() - start) * 1000, 2))


async def readiness(services: AppServices) -> Readiness:
    timeout = services.settings.readyz_timeout_s

    async def database() -> None:
        # The connection goes back to the pool as soon as SELECT 1 answers.
        async with services.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await services.redis.ping()

    checks = {"database": await _timed(timeout, database), "redis": await _timed(timeout, redis)}
    if services.settings.readyz_require_workers:
        checks.update(await _worker_checks(services, timeout))
    ready = all(c.ok for c in checks.values())
    return Readiness(status="ready" if ready else "not_ready", checks=checks)


async def _worker_checks(services: AppServices, limit_s: float) -> dict[str, Check]:
    seen: dict[WorkerType, list[dict[str, object]]] = {}

    async def heartbeats() -> None:
        seen.update(await queues.workers(services.redis))

    read = await _timed(limit_s, heartbeats)
    checks = {}
    for worker_type in WorkerType:
        if not read.ok:
            checks[worker_type.value] = Check(
                ok=False, detail=f"heartbeats unreadable: {read.detail}"
            )
            continue
        fresh = [
            w for w in seen.get(worker_type, [])
            if isinstance(w["last_seen_s"], float) and w["last_seen_s"] <= HEARTBEAT_TTL_S
        ]  # fmt: skip
        checks[worker_type.value] = Check(
            ok=bool(fresh), detail=f"{len(fresh)} alive" if fresh else "no recent heartbeat"
        )
    return checks


async def scrape(services: AppServices) -> bytes:
    """Every sample the API's processes recorded, plus gauges read now from Postgres and
    Redis: jobs by status, queue depths and the age of each queue's oldest message.

    A backend that fails leaves its gauges out of this scrape (and counts the failure)
    rather than failing the scrape.
    """
    metrics = services.metrics
    timeout = services.settings.readyz_timeout_s
    jobs = GaugeMetricFamily(
        "roadmap_jobs", "Roadmap jobs (not deleted) by status", labels=["status"]
    )
    read: list[Metric] = []
    try:
        with anyio.fail_after(timeout):
            async with services.db.sessions() as session:
                counts = await job_reads.job_status_counts(session)
        for status, n in counts.items():
            jobs.add_metric([status.value], n)
        read.append(jobs)
    except Exception:  # a scrape must not fail because one source did
        metrics.scrape_errors.labels("database").inc()
    try:
        with anyio.fail_after(timeout):
            depths = await queues.depths(services.broker)
            ages = await queues.oldest_ages(services.broker)
        read += queue_families(depths, ages)
    except Exception:  # as above
        metrics.scrape_errors.labels("redis").inc()
    return render(metrics.registry, [_Read(read)])


class _Read(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families
