"""What one logs-worker process owns: its event loop, engine/pool, watchdog and heartbeat.

Built after fork (``worker_process_init`` in a prefork child, or lazily in the
process that runs the first task for solo/threads pools) and torn down on
shutdown. Nothing here is ever inherited across ``fork()``: every accessor checks
the pid and builds a fresh runtime in a new process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from redis import Redis

from roadmap_core.aio import BackgroundLoop
from roadmap_core.heartbeat import WorkerType, beat, heartbeat_key, instance_name
from roadmap_db.engine import ProcessDatabase
from roadmap_worker_logs.retention import sweep_periodically
from roadmap_worker_logs.settings import SERVICE_NAME, LogsWorkerSettings
from roadmap_worker_logs.watchdog import LoopWatchdog
from roadmap_worker_logs.writer import WriterStats

log = logging.getLogger(__name__)

T = TypeVar("T")


class ProcessRuntime:
    def __init__(self, settings: LogsWorkerSettings) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.instance = instance_name()
        self.stats = WriterStats()
        self.loop = BackgroundLoop(f"logs-loop-{self.pid}")
        self.loop.start()
        self.loop_thread_ident = self.loop.run(_thread_ident())
        # Engine and pool are created on the loop that will use every connection.
        self.db: ProcessDatabase = self.loop.run(_open_database(settings))
        self.watchdog = LoopWatchdog(
            self.loop.loop,
            self.loop_thread_ident,
            threshold_s=settings.logs_loop_stall_s,
            interval_s=settings.logs_watchdog_interval_s,
        )
        self.watchdog.start()
        self._retention: Future[None] | None = None
        if settings.logs_retention_interval_s > 0:
            self._retention = self.loop.submit(
                sweep_periodically(
                    self.db,
                    interval_s=settings.logs_retention_interval_s,
                    retention_days=settings.log_retention_days,
                    chunk=settings.logs_retention_chunk,
                    pause_s=settings.logs_retention_pause_s,
                )
            )
        self._stop = threading.Event()
        self._redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_socket_timeout_s,
            socket_connect_timeout=settings.redis_socket_timeout_s,
        )
        self._heartbeat = threading.Thread(
            target=self._beat_forever, name="logs-heartbeat", daemon=True
        )
        self._heartbeat.start()
        log.info("logs worker process %d ready (pool %d)", self.pid, settings.logs_db_pool_size)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on this process's loop; on timeout it is cancelled there."""
        future = self.loop.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def info(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "loop_thread": self.loop_thread_ident,
            "engine_id": id(self.db.engine),
            "loop_lag_ms": round(self.watchdog.lag_s * 1000, 3),
            "loop_max_lag_ms": round(self.watchdog.max_lag_s * 1000, 3),
            "loop_stalls": self.watchdog.stalls,
            "pool": self.db.engine.pool.status(),
            **self.stats.snapshot(),
        }

    def _beat_forever(self) -> None:
        while True:
            try:
                beat(self._redis, WorkerType.logs, self.instance, **self.info())
            except Exception as exc:  # Redis down: try again next interval
                log.debug("heartbeat failed: %s", exc)
            if self._stop.wait(self.settings.logs_heartbeat_interval_s):
                return

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.watchdog.stop()
        if self._retention is not None:
            self._retention.cancel()
        deadline = time.monotonic() + timeout
        try:
            self.loop.run(self.db.dispose(), timeout)
        except Exception:
            log.warning("could not dispose the logs worker engine cleanly", exc_info=True)
        self.loop.stop(max(0.1, deadline - time.monotonic()))
        self._heartbeat.join(1.0)
        try:  # say "gone" at once instead of letting the key expire
            self._redis.delete(heartbeat_key(WorkerType.logs, self.instance))
        except Exception as exc:
            log.debug("could not clear the heartbeat: %s", exc)
        self._redis.close()


async def _thread_ident() -> int:
    return threading.get_ident()


async def _open_database(settings: LogsWorkerSettings) -> ProcessDatabase:
    asyncio.get_running_loop()  # must be called on the loop that will use the pool
    return ProcessDatabase(
        settings,
        SERVICE_NAME,
        pool_size=settings.logs_db_pool_size,
        max_overflow=settings.logs_db_max_overflow,
    )


_runtime: ProcessRuntime | None = None
_runtime_lock = threading.Lock()


def get_runtime(settings: LogsWorkerSettings) -> ProcessRuntime:
    """This process's runtime, built on first use in each process."""
    global _runtime, _runtime_lock
    current = _runtime
    if current is not None and current.pid == os.getpid():
        return current
    if current is not None:  # inherited through fork: the parent owns it, never touch it
        _runtime, _runtime_lock = None, threading.Lock()
    with _runtime_lock:
        if _runtime is None:
            _runtime = ProcessRuntime(settings)
        return _runtime


def close_runtime() -> None:
    global _runtime
    current = _runtime
    if current is not None and current.pid == os.getpid():
        _runtime = None
        current.close()
