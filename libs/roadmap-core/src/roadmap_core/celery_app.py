"""The Celery app factory with the configuration every process shares.

Time limits are ordered ``LLM timeout < soft limit < hard limit < visibility
timeout`` so a slow call fails inside the task, the task gets a chance to clean
up, and Redis never redelivers a message that is still being worked on.
"""

from __future__ import annotations

import time
from typing import Any, Final

from celery import Celery
from celery.signals import before_task_publish
from kombu import Exchange, Queue

from roadmap_core.contracts import CHAT_QUEUE, CONTENT_QUEUE, CONTRACTS, LOGS_QUEUE
from roadmap_core.settings import RedisSettings

# Seconds. The content tasks do a bounded number of LLM calls each; see llm docs.
CONTENT_SOFT_TIME_LIMIT = 900
CONTENT_HARD_TIME_LIMIT = 960
LOGS_SOFT_TIME_LIMIT = 60
LOGS_HARD_TIME_LIMIT = 90

# Unix time a message was published, in its headers: Celery's protocol has no send time,
# and the age of a queue's oldest message is what tells a stuck queue (/admin/queues).
SENT_AT_HEADER: Final = "sent_at"


def _stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())


before_task_publish.connect(_stamp_sent_at, weak=False, dispatch_uid="roadmap-sent-at")


def create_celery_app(name: str, settings: RedisSettings) -> Celery:
    if settings.broker_visibility_timeout_s <= CONTENT_HARD_TIME_LIMIT:
        raise ValueError(
            "BROKER_VISIBILITY_TIMEOUT_S must exceed the content hard time limit"
            f" ({CONTENT_HARD_TIME_LIMIT}s)"
        )
    app = Celery(name, broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=(
            Queue(CONTENT_QUEUE, Exchange(CONTENT_QUEUE), routing_key=CONTENT_QUEUE),
            Queue(CHAT_QUEUE, Exchange(CHAT_QUEUE), routing_key=CHAT_QUEUE),
            Queue(LOGS_QUEUE, Exchange(LOGS_QUEUE), routing_key=LOGS_QUEUE),
        ),
        task_routes={
            name: {"queue": c.queue, "routing_key": c.queue} for name, c in CONTRACTS.items()
        },
        task_default_queue=CONTENT_QUEUE,
        task_create_missing_queues=False,
        task_soft_time_limit=CONTENT_SOFT_TIME_LIMIT,
        task_time_limit=CONTENT_HARD_TIME_LIMIT,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "socket_timeout": settings.redis_socket_timeout_s,
            "socket_connect_timeout": settings.redis_socket_timeout_s,
            "retry_on_timeout": True,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.redis_socket_timeout_s,
        # A publish must fail fast when Redis is down: callers fall back on the
        # reconciler instead of hanging a request.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.05,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=True,
        enable_utc=True,
    )
    return app
