"""Threads of the worker's main process: the liveness heartbeat, the reconciler and the
metrics server.

They start once the pool's first children have forked (``worker_ready``) and
stop on ``worker_shutdown``. Children never use them: a child forked later
inherits only the thread that forked it, and builds everything it needs itself.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from redis import Redis as SyncRedis

from roadmap_core.contracts import CONTENT_QUEUE
from roadmap_core.heartbeat import HEARTBEAT_INTERVAL_S, WorkerType, beat, instance_name
from roadmap_core.metrics.exposition import WorkerMetricsEndpoint
from roadmap_worker_content.reconciler import ReconcilerThread
from roadmap_worker_content.settings import ContentWorkerSettings

log = logging.getLogger(__name__)


class HeartbeatThread:
    def __init__(
        self,
        settings: ContentWorkerSettings,
        reconciler: ReconcilerThread | None,
        interval_s: float = HEARTBEAT_INTERVAL_S,
        queues: tuple[str, ...] = (CONTENT_QUEUE,),
    ) -> None:
        self._settings = settings
        self._queues = list(queues)
        self._reconciler = reconciler
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="roadmap-heartbeat", daemon=True)
        self.instance = instance_name()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        redis = SyncRedis.from_url(
            self._settings.redis_url,
            socket_timeout=self._settings.redis_socket_timeout_s,
            socket_connect_timeout=self._settings.redis_socket_timeout_s,
        )
        try:
            while not self._stop.is_set():
                try:
                    beat(
                        redis,
                        WorkerType.content,
                        self.instance,
                        queues=self._queues,
                        concurrency=self._settings.worker_concurrency,
                        llm_concurrency=self._settings.llm_concurrency,
                        reconciler_leader=bool(self._reconciler and self._reconciler.leading),
                    )
                except Exception as exc:
                    log.warning("heartbeat failed: %s", exc)
                self._stop.wait(self._interval_s)
        finally:
            redis.close()


class Supervisor:
    """Starts and stops the main process's threads."""

    def __init__(self, settings: ContentWorkerSettings, app: Celery) -> None:
        self._settings = settings
        self._app = app
        # What this process consumes (set once its queues are known, before ``start``).
        self.queues: tuple[str, ...] = (CONTENT_QUEUE,)
        self.reconciler: ReconcilerThread | None = None
        self.heartbeat: HeartbeatThread | None = None
        self.metrics = WorkerMetricsEndpoint(
            settings,
            broker_url=settings.broker_url,
            queues=[CONTENT_QUEUE],
            socket_timeout_s=settings.redis_socket_timeout_s,
        )

    def start(self) -> None:
        if self.heartbeat is not None:
            return
        # The reconciler re-sends lost content work: the content worker's job, not chat's.
        if self._settings.reconciler_enabled and CONTENT_QUEUE in self.queues:
            self.reconciler = ReconcilerThread(self._settings, self._app)
            self.reconciler.start()
        self.heartbeat = HeartbeatThread(self._settings, self.reconciler, queues=self.queues)
        self.heartbeat.start()
        self.metrics.start()

    def stop(self) -> None:
        self.metrics.stop()
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None
        if self.reconciler is not None:
            self.reconciler.stop()
            self.reconciler = None
