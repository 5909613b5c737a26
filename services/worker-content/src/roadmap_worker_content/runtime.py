"""What one prefork child owns: its event loop, engine, Redis client and LLM client.

Built in ``worker_process_init`` (after fork, so nothing is shared with the
parent or a sibling) and disposed in ``worker_process_shutdown``. The loop runs
in a background thread of the child for the child's whole life; task bodies
(synchronous, in the child's main thread) hand their coroutines to it, so the
connection pools bound to that loop are reused by every task.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Coroutine
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from redis.asyncio import Redis

from roadmap_core.aio import BackgroundLoop
from roadmap_core.llm.client import LLMClient
from roadmap_core.llm.inflight import InFlightCap, replica_cap
from roadmap_core.pipeline.grounding import ResourceSearch
from roadmap_core.search import LinkChecker, provider_from_settings
from roadmap_db.engine import ProcessDatabase
from roadmap_worker_content.events import EventPublisher
from roadmap_worker_content.settings import SERVICE_NAME, ContentWorkerSettings
from roadmap_worker_content.usage import DatabaseUsageSink

log = logging.getLogger(__name__)
T = TypeVar("T")

# After a soft time limit the coroutine is cancelled; it gets this long to record why.
CANCEL_GRACE_S = 10.0


@dataclass(slots=True)
class Runtime:
    settings: ContentWorkerSettings
    loop: BackgroundLoop
    db: ProcessDatabase
    redis: Redis
    llm: LLMClient
    progress: EventPublisher
    # Items allowed to count an attempt and line up for the LLM client's own
    # LLM_CONCURRENCY slots: twice as many, so the next calls wait ready to go (the
    # client's slot turns over without a database round trip), while an item that
    # never got near a call is not charged if the process dies.
    slots: asyncio.Semaphore
    # Web search and link checks for resources (None: SEARCH_PROVIDER unset, they fail).
    search: ResourceSearch | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the child's loop and wait; a soft time limit cancels it."""
        future = self.loop.submit(coro)
        try:
            return future.result()
        except SoftTimeLimitExceeded:
            future.cancel()
            try:
                future.result(CANCEL_GRACE_S)
            except (FutureCancelled, FutureTimeout, Exception):
                log.warning("task cancelled after its soft time limit")
            raise


@dataclass(frozen=True, slots=True)
class Replica:
    """The worker process whose children share ``WORKER_LLM_SLOTS``."""

    # Unique among live replicas (host, main process, a random part: a restarted replica
    # with the same pid does not inherit the leases of its previous life).
    name: str
    children: int


_replica: Replica | None = None


def mark_replica(children: int) -> None:
    """In the worker's main process, before the pool forks: the children inherit it."""
    global _replica
    _replica = Replica(f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}", children)


def shared_caps(settings: ContentWorkerSettings) -> tuple[InFlightCap, ...]:
    """The replica's budget of LLM calls in flight, if its children could exceed it.

    Each child may make ``LLM_CONCURRENCY`` calls at once; with more children than
    ``WORKER_LLM_SLOTS / LLM_CONCURRENCY`` they share the budget through Redis (one
    round trip to take a slot and one to give it back), else nothing is shared.
    """
    if _replica is None or _replica.children * settings.llm_concurrency <= (
        settings.worker_llm_slots
    ):
        return ()
    return (replica_cap(_replica.name, settings.worker_llm_slots),)


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the content worker runtime is not initialised in this process")
    return _runtime


async def _build(settings: ContentWorkerSettings, loop: BackgroundLoop) -> Runtime:
    db = ProcessDatabase(
        settings,
        SERVICE_NAME,
        pool_size=settings.child_pool_size,
        max_overflow=settings.worker_db_max_overflow,
        # A step that starts while PostgreSQL restarts waits for it: no attempt is lost.
        outage_window_s=settings.infra_outage_window_s,
    )
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
        health_check_interval=30,
    )
    llm = LLMClient.from_settings(
        settings, redis=redis, usage_sink=DatabaseUsageSink(db), caps=shared_caps(settings)
    )
    slots = asyncio.Semaphore(line_up(settings))
    return Runtime(
        settings,
        loop,
        db,
        redis,
        llm,
        EventPublisher(redis, settings),
        slots,
        build_search(settings),
    )


def line_up(settings: ContentWorkerSettings) -> int:
    """How many items of a child may count an attempt and line up for an LLM call."""
    return 2 * settings.llm_concurrency


def build_search(settings: ContentWorkerSettings) -> ResourceSearch | None:
    if settings.search_provider is None:
        return None
    return ResourceSearch(
        provider_from_settings(settings),
        LinkChecker(
            allow_loopback=settings.link_check_allow_loopback,
            allow_hosts=frozenset(settings.link_check_allow_hosts),
            concurrency=settings.link_check_concurrency,
            timeout_s=settings.link_check_timeout_s,
        ),
        results=settings.search_results,
    )


def start_runtime(settings: ContentWorkerSettings) -> Runtime:
    """Build this process's runtime (idempotent within one process)."""
    global _runtime
    if _runtime is not None and _runtime.loop.running:
        return _runtime
    loop = BackgroundLoop("roadmap-content-loop")
    loop.start()
    _runtime = loop.run(_build(settings, loop))
    return _runtime


async def _dispose(rt: Runtime) -> None:
    closers = [rt.llm.aclose, rt.redis.aclose, rt.db.dispose]
    if rt.search is not None:
        closers.append(rt.search.aclose)
    for close in closers:
        try:
            await close()
        except Exception:
            log.exception("closing %s failed", close)


def stop_runtime(timeout: float = 10.0) -> None:
    global _runtime
    rt, _runtime = _runtime, None
    if rt is None or not rt.loop.running:
        return
    try:
        rt.loop.run(_dispose(rt), timeout)
    finally:
        rt.loop.stop()
