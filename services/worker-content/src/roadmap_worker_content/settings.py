"""Settings of the content worker (one ``ContentWorkerSettings`` per process, from the environment).

Composed from the shared mixins (``DATABASE_URL``…, ``REDIS_URL``…, ``OPENAI_*``/``LLM_*``,
``LOG_*``) plus these worker knobs:

=============================  =========  =====================================================
env                            default    meaning
=============================  =========  =====================================================
``WORKER_CONCURRENCY``         3          prefork children per worker process (one task each)
``WORKER_LLM_SLOTS``           16         LLM calls in flight per worker process, shared by its
                                          children when they could exceed it (see below)
``WORKER_MAX_TASKS_PER_CHILD`` 200        a child is replaced after this many tasks
``ITEM_LEASE_S``               60         a claim (job or item) not renewed for this long is
                                          taken over; holders renew it every third of it
``RECONCILE_INTERVAL_S``       15         how often the (single active) reconciler runs
``STALE_AGE_S``                60         ``queued`` work older than this is sent again
``RECONCILE_BATCH``            200        rows the reconciler handles per query and pass
``RECONCILER_ENABLED``         true       run the reconciler thread in this worker process
``CONCEPT_BATCH_SIZE``         8          concepts per ``content.generate_concepts`` task
``SOFT_SHUTDOWN_TIMEOUT_S``    20         after SIGTERM, running tasks get this long before they
                                          are cancelled and their messages handed back
``WORKER_DB_POOL_SIZE``        LLM_CONC.  Postgres connections each child keeps open (default
                               + 1        ``LLM_CONCURRENCY + 1``: every call slot stores its result
                                          without waiting for a connection)
``WORKER_DB_MAX_OVERFLOW``     2          extra connections a child may open briefly
``METRICS_PORT``               9464       the main process serves ``GET /metrics`` here (every
                                          child's samples; only with ``METRICS_TOKEN`` set)
``CHAT_WORKER_CONCURRENCY``    4          children of a chat worker process (one answer each)
``CHAT_CONTEXT_TOKENS``        6000       prompt budget of a mentor-chat answer: the plan, the
                                          concept's tutorial and the recent history share it
``CHAT_HISTORY_MESSAGES``      20         earlier messages an answer may see (within the budget)
``CHAT_MAX_OUTPUT_TOKENS``     1000       longest mentor-chat answer
=============================  =========  =====================================================

Concurrency budget: one worker process runs at most ``WORKER_LLM_SLOTS`` LLM calls at once,
and each child at most ``LLM_CONCURRENCY`` (each child runs one task, whose items share the
child's slots); the whole fleet at most ``LLM_RPM`` requests per minute (the global limiter
in Redis). When ``WORKER_CONCURRENCY x LLM_CONCURRENCY`` exceeds ``WORKER_LLM_SLOTS`` the
children share the replica's slots through Redis (leases: a killed child's slots come back
after ``LLM_TIMEOUT_S`` + 10 s), so that a child whose task makes few calls (a plan: two
in series) leaves its share to its siblings. A task of ``CONCEPT_BATCH_SIZE`` concepts has
``3 x CONCEPT_BATCH_SIZE`` calls to make, and a child takes its next task only when the last
call of this one returned: make ``3 x CONCEPT_BATCH_SIZE`` a multiple of ``LLM_CONCURRENCY``
so the last round of calls fills the slots too. With 4 (12 calls for 8 slots: a full round,
then 4) a child's slots were busy about 3/4 of the time; with 8 (three full rounds) they
stay full until the task's last calls (the scale-out benchmark measures both:
``scale_batch_size_gain_w1_a1`` in ``bench/results/latest.json``).

Connection budget per worker process: ``WORKER_CONCURRENCY x (WORKER_DB_POOL_SIZE +
WORKER_DB_MAX_OVERFLOW)`` for the children plus 2 for the reconciler (its advisory-lock
connection and one working connection): 3 x (9 + 2) + 2 = 35 with the defaults. A smaller
pool works (items then wait for a connection); one much smaller than ``LLM_CONCURRENCY``
costs throughput, since each call slot writes before its call and after it.

Bounds: an item gets ``LLM_TASK_MAX_ATTEMPTS`` LLM attempts (counted when a call starts)
and ``2 x LLM_TASK_MAX_ATTEMPTS + 1`` claims (an item whose tasks keep dying before any call
still ends ``failed``); planning gets ``LLM_TASK_MAX_ATTEMPTS`` claims per round.

Shutdown: start the worker with ``REMAP_SIGTERM=SIGQUIT`` (``roadmap-worker-content`` and
``python -m roadmap_worker_content`` set it) so SIGTERM begins Celery's soft shutdown: running
tasks get ``SOFT_SHUTDOWN_TIMEOUT_S`` to finish, then are cancelled and their unacknowledged
messages go back to Redis at once (no visibility-timeout wait). Their redelivery carries the
same task id, which holds the claims, so the next worker resumes immediately. Set the
platform's draining time (Railway: ``RAILWAY_DEPLOYMENT_DRAINING_SECONDS``) above
``SOFT_SHUTDOWN_TIMEOUT_S`` + 10.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from roadmap_core.settings import (
    DatabaseSettings,
    LLMSettings,
    LogShipSettings,
    RedisSettings,
    SearchSettings,
    WorkerMetricsSettings,
)

SERVICE_NAME = "roadmap-worker-content"


class ContentWorkerSettings(
    DatabaseSettings,
    RedisSettings,
    LLMSettings,
    SearchSettings,
    LogShipSettings,
    WorkerMetricsSettings,
):
    worker_concurrency: int = Field(default=3, ge=1, le=64)
    worker_llm_slots: int = Field(default=16, ge=1, le=4096)
    worker_max_tasks_per_child: int = Field(default=200, ge=1)
    item_lease_s: float = Field(default=60.0, ge=1.0, le=3600)
    reconcile_interval_s: float = Field(default=15.0, ge=0.2, le=3600)
    stale_age_s: float = Field(default=60.0, ge=0.5, le=24 * 3600)
    reconcile_batch: int = Field(default=200, ge=1, le=10_000)
    reconciler_enabled: bool = True
    concept_batch_size: int = Field(default=8, ge=1, le=32)
    soft_shutdown_timeout_s: float = Field(default=20.0, ge=0, le=3600)
    worker_db_pool_size: int | None = Field(default=None, ge=1, le=100)
    worker_db_max_overflow: int = Field(default=2, ge=0, le=50)
    chat_worker_concurrency: int = Field(default=4, ge=1, le=64)
    chat_context_tokens: int = Field(default=6000, ge=500, le=200_000)
    chat_history_messages: int = Field(default=20, ge=0, le=200)
    chat_max_output_tokens: int = Field(default=1000, ge=16, le=32_000)

    @property
    def item_lease(self) -> timedelta:
        return timedelta(seconds=self.item_lease_s)

    @property
    def stale_age(self) -> timedelta:
        return timedelta(seconds=self.stale_age_s)

    @property
    def lease_renew_s(self) -> float:
        return self.item_lease_s / 3

    @property
    def item_max_claims(self) -> int:
        """Claims an item may take before it fails even without a started attempt:
        room for the crashes a poison neighbour causes, yet a bound."""
        return 2 * self.llm_task_max_attempts + 1

    @property
    def child_pool_size(self) -> int:
        return self.worker_db_pool_size or self.llm_concurrency + 1
