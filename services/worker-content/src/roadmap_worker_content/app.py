"""The content worker's Celery app: ``celery -A roadmap_worker_content.app:celery_app worker``.

Prefork pool, consuming only ``content_generation`` — or, started with ``-Q chat``, only
the mentor chat's answers (a process of its own, so an answer never waits behind bulk
generation; ``roadmap-worker-content chat`` starts one). The
main process keeps the heartbeat, reconciler and metrics threads; every child builds its
own event loop, engine, Redis and LLM clients after fork and disposes of them
when it exits. Start it with ``REMAP_SIGTERM=SIGQUIT`` in the environment (the
``roadmap-worker-content`` entry point sets it) so SIGTERM is a soft shutdown:
see :mod:`roadmap_worker_content.settings`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from roadmap_core import celery_shutdown, telemetry
from roadmap_core.celery_app import create_celery_app
from roadmap_core.contracts import CHAT_QUEUE, CONTENT_QUEUE
from roadmap_core.gc_freeze import freeze_startup_objects
from roadmap_core.logjson import json_lines
from roadmap_core.logship import configure_logship
from roadmap_core.logship import shutdown as shutdown_logship
from roadmap_core.metrics import processes
from roadmap_core.metrics import tasks as task_metrics
from roadmap_worker_content import runtime
from roadmap_worker_content.settings import SERVICE_NAME, ContentWorkerSettings
from roadmap_worker_content.supervisor import Supervisor
from roadmap_worker_content.warmup import warm_caches

log = logging.getLogger(__name__)
# One INFO line per HTTP request to the LLM is noise; every call is an execution-log event.
for _noisy in ("httpx", "httpx2", "openai"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

settings = ContentWorkerSettings()
celery_app = create_celery_app(SERVICE_NAME, settings)
celery_app.conf.update(
    worker_pool="prefork",
    worker_concurrency=settings.worker_concurrency,
    worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
    # Cold shutdown (SIGTERM remapped to SIGQUIT) first waits this long for running
    # tasks, then cancels them; their unacknowledged messages go back to Redis.
    worker_soft_shutdown_timeout=settings.soft_shutdown_timeout_s,
    # Idle workers exit at once: with no ETA tasks there is nothing to hand back.
    worker_enable_soft_shutdown_on_idle=False,
)

_supervisor = Supervisor(settings, celery_app)
celery_shutdown.bound_cold_shutdown()


def _chosen_queue(worker: Any) -> str:
    # The shared app declares every queue (to publish logs); this worker consumes one:
    # chat when -Q names only chat, else content (whatever else -Q says).
    asked = set(worker.app.amqp.queues.consume_from)
    return CHAT_QUEUE if CHAT_QUEUE in asked and CONTENT_QUEUE not in asked else CONTENT_QUEUE


@signals.celeryd_after_setup.connect
def _consume_one_queue(sender: str, instance: Any, **_: Any) -> None:
    queue = _chosen_queue(instance)
    instance.app.amqp.queues.select([queue])
    _supervisor.queues = (queue,)


@signals.worker_init.connect
def _main_starting(sender: Any = None, **_: Any) -> None:
    # A content worker's children share its LLM call slots; a chat worker's children make
    # one call at a time each, so they have nothing to share.
    if sender is not None and _chosen_queue(sender) == CONTENT_QUEUE:
        children = getattr(sender, "concurrency", None)
        runtime.mark_replica(children if isinstance(children, int) else settings.worker_concurrency)
    # Before the pool forks: every child writes its samples where the main process reads them.
    if settings.metrics_multiprocess:
        processes.enable(SERVICE_NAME)
    warm_caches()
    freeze_startup_objects()


@signals.worker_process_init.connect
def _child_started(**_: Any) -> None:
    # Before anything opens a connection: the instrumentations wrap the clients' classes.
    telemetry.setup(SERVICE_NAME, celery=True)
    configure_logship(celery_app, settings, source=f"{SERVICE_NAME}-child")
    runtime.start_runtime(settings)
    # The child's own clients, engine and loop live as long as it does.
    freeze_startup_objects()


@signals.worker_process_shutdown.connect
def _child_stopping(**_: Any) -> None:
    try:
        runtime.stop_runtime()
    finally:
        shutdown_logship(2.0)
        processes.process_exited()
        telemetry.shutdown(2.0)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_lines(logger: logging.Logger, **_: Any) -> None:
    if settings.log_json:
        json_lines(logger)


@signals.worker_ready.connect
def _main_ready(**_: Any) -> None:
    configure_logship(celery_app, settings, source=SERVICE_NAME)
    _supervisor.start()


@signals.worker_shutdown.connect
def _main_stopping(**_: Any) -> None:
    try:
        _supervisor.stop()
    finally:
        shutdown_logship(2.0)
        processes.release()


task_metrics.install()


# Registers the tasks on ``celery_app`` (they import it, hence the import at the end).
from roadmap_worker_content import tasks  # noqa: E402, F401
