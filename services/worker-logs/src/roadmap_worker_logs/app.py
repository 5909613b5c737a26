"""The logs worker's Celery app: ``celery -A roadmap_worker_logs.app:celery_app worker``.

Pool: **prefork**, concurrency ``LOGS_WORKER_CONCURRENCY`` (default 2). Each child
builds its own event loop + engine in ``worker_process_init`` (never inherited
from the parent) and disposes them in ``worker_process_shutdown``. Prefork over
solo/threads because JSON decoding and validation of large batches is CPU work
that threads would serialise on the GIL, a child that dies mid-batch is replaced
while ``reject_on_worker_lost`` requeues its message, and a stuck child is
bounded by the hard time limit. With solo/threads the runtime is built lazily in
the worker process by the first task and closed on ``worker_shutdown``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from kombu import Exchange, Queue

from roadmap_core import celery_shutdown, telemetry
from roadmap_core.celery_app import create_celery_app
from roadmap_core.contracts import LOGS_QUEUE
from roadmap_core.gc_freeze import freeze_startup_objects
from roadmap_core.logjson import json_lines
from roadmap_core.metrics import processes
from roadmap_core.metrics import tasks as task_metrics
from roadmap_core.metrics.exposition import WorkerMetricsEndpoint
from roadmap_worker_logs.broker import transport_options
from roadmap_worker_logs.runtime import close_runtime, get_runtime
from roadmap_worker_logs.settings import SERVICE_NAME, LogsWorkerSettings
from roadmap_worker_logs.tasks import register_tasks

settings = LogsWorkerSettings()

celery_app = create_celery_app(SERVICE_NAME, settings)
celery_app.conf.update(
    # This worker serves the logs queue only, even when started without -Q.
    task_queues=(Queue(LOGS_QUEUE, Exchange(LOGS_QUEUE), routing_key=LOGS_QUEUE),),
    task_default_queue=LOGS_QUEUE,
    worker_pool="prefork",
    worker_concurrency=settings.logs_worker_concurrency,
    worker_prefetch_multiplier=settings.logs_prefetch_multiplier,
    # Batches of a worker that died come back in minutes, not after the content queue's hour.
    broker_transport_options=transport_options(settings, celery_app.conf.broker_transport_options),
)
register_tasks(celery_app, settings)
celery_shutdown.bound_cold_shutdown()


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
    )
    if settings.log_json:
        json_lines(logging.getLogger())


@worker_init.connect
def _start_main(**_: Any) -> None:
    # Before the pool forks: every child writes its samples where the main process reads them.
    if settings.metrics_multiprocess:
        processes.enable(SERVICE_NAME)
    freeze_startup_objects()


@worker_ready.connect
def _main_ready(**_: Any) -> None:
    main_metrics.start()


@worker_process_init.connect
def _start_child(**_: Any) -> None:
    telemetry.setup(SERVICE_NAME, celery=True)
    get_runtime(settings)
    freeze_startup_objects()  # the child's own engine and loop live as long as it does


@worker_process_shutdown.connect
def _stop_child(**_: Any) -> None:
    try:
        close_runtime()
    finally:
        processes.process_exited()
        telemetry.shutdown(2.0)


@worker_shutdown.connect
def _stop_main(**_: Any) -> None:
    try:
        close_runtime()
        main_metrics.stop()
    finally:
        processes.release()


main_metrics = WorkerMetricsEndpoint(
    settings,
    broker_url=settings.broker_url,
    queues=[LOGS_QUEUE],
    socket_timeout_s=settings.redis_socket_timeout_s,
)
task_metrics.install()
