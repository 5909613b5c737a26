r"""Settings of the API process (one ``ApiSettings`` per process, read from the environment).

Connection budget
-----------------
Each uvicorn worker process builds one engine (``ProcessDatabase(settings, "roadmap-api")``)
and holds at most ``DB_POOL_SIZE + DB_MAX_OVERFLOW`` Postgres connections (defaults 20 + 0).
With ``W`` uvicorn workers and ``R`` replicas the API needs ``R * W * (DB_POOL_SIZE +
DB_MAX_OVERFLOW)`` connections; add the workers' budgets (see their settings modules) plus a
few for ``roadmap-db migrate`` and psql, and keep the sum under the server's
``max_connections`` (100 on a default Postgres, ~100 on Railway's plugin). One replica with
two workers therefore takes up to 40.

The default is a fixed pool (no overflow): an overflow connection is opened for a burst and
closed again as soon as it is returned, and opening one costs a TLS probe, authentication
and two ``SET``\ s — several milliseconds of a request's latency, over and over under load.
Requests beyond the pool wait for a connection (at most ``DB_POOL_TIMEOUT_S``) instead.

Submits do not take a connection each: ``POST /roadmaps`` runs one statement per batch of
concurrent submits on at most two pool connections, which stay checked out while submits
keep coming and go back after a second without one (``roadmaps/submits.py``).

No request holds a connection for long: reads and writes run in short transactions, the SSE
endpoint reads its snapshot and releases the connection before it starts streaming, and
``/readyz`` checks out a connection only for its ``SELECT 1``. A request that cannot get a
connection within ``DB_POOL_TIMEOUT_S`` (default 3 s here) or whose statement runs longer
than ``DB_STATEMENT_TIMEOUT_MS`` (default 5 s here) answers 503 instead of hanging.

Redis: one pool of ``REDIS_MAX_CONNECTIONS`` for short commands (rate limits, readiness),
a separate pool for the blocking stream reads of open SSE connections, a few connections
larger than ``SSE_MAX_STREAMS``, the number of streams a process admits (more → 503, and
``SSE_MAX_STREAMS_PER_USER`` per user over all processes → 429; ``roadmaps/stream_slots.py``),
so an admitted stream never waits for a connection, and four connections to the broker (``CELERY_BROKER_URL``, by default the
same server) for task sends and queue depths.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from roadmap_core.settings import (
    AuthSettings,
    DatabaseSettings,
    LogShipSettings,
    MetricsSettings,
    RedisSettings,
)


class ApiSettings(DatabaseSettings, RedisSettings, AuthSettings, LogShipSettings, MetricsSettings):
    # Tighter than the shared defaults: an API request must fail fast, never queue for long.
    db_pool_size: int = Field(default=20, ge=1, le=100)
    db_max_overflow: int = Field(default=0, ge=0, le=100)
    db_pool_timeout_s: float = Field(default=3.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5_000, ge=0)
    # Connections opened at startup (up to the pool size), so the first burst of traffic
    # does not pay for opening them (TLS negotiation and authentication each).
    db_pool_prewarm: int = Field(default=20, ge=0, le=100)

    redis_max_connections: int = Field(default=50, ge=2, le=10_000)
    redis_pool_timeout_s: float = Field(default=2.0, gt=0)

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Slow or oversized clients, bounded by the server's protocol (``http_limits.py``).
    http_header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    http_body_idle_timeout_s: float = Field(default=10.0, gt=0, le=300)
    http_body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    access_log: bool = True

    # Per-user quotas, checked in the transaction that starts the LLM work (roadmap_api.quotas).
    quota_max_active_jobs: int = Field(default=5, ge=1)
    quota_jobs_per_day: int = Field(default=50, ge=1)
    quota_tokens_per_day: int = Field(default=2_000_000, ge=1)
    quota_active_retry_after_s: int = Field(default=60, ge=1)
    # Tokens held against QUOTA_TOKENS_PER_DAY while the work is in flight, so concurrent
    # requests see each other; when the work rests or ends its real usage counts instead.
    # A new roadmap without review (planning and content of ~24 concepts):
    quota_reserve_roadmap_tokens: int = Field(default=300_000, ge=0)
    # Planning or revising one plan (a new roadmap with review, a review with feedback):
    quota_reserve_plan_tokens: int = Field(default=20_000, ge=0)
    # Generating one content item (approving a plan, retry, regenerate: per item):
    quota_reserve_item_tokens: int = Field(default=4_000, ge=0)
    # A mentor-chat answer: its prompt (plan, tutorial, history) and its longest answer.
    quota_reserve_chat_tokens: int = Field(default=8_000, ge=0)

    # Login throttling: failures per (email, client IP) and attempts per IP, in a window.
    login_max_failures: int = Field(default=10, ge=1)
    login_ip_max_attempts: int = Field(default=100, ge=1)
    login_window_s: int = Field(default=900, ge=10)
    register_ip_max: int = Field(default=20, ge=1)
    # Active (unrevoked) API keys a user may hold; creating one more answers 409.
    api_keys_max_per_user: int = Field(default=20, ge=1, le=1000)
    register_window_s: int = Field(default=3600, ge=10)

    # Tasks are sent by a publishing thread; a request waits this long for its send, after
    # which the row waits for the reconciler.
    enqueue_timeout_s: float = Field(default=2.0, gt=0, le=30)

    sse_ping_s: float = Field(default=15.0, gt=0)
    sse_block_ms: int = Field(default=5_000, ge=100, le=60_000)
    # Below 30 s with SSE_BLOCK_MS on top: a disabled user's streams end within 30 s.
    sse_recheck_s: float = Field(default=20.0, gt=0)
    sse_max_streams: int = Field(default=200, ge=1, le=10_000)
    sse_max_streams_per_user: int = Field(default=10, ge=1, le=10_000)

    readyz_timeout_s: float = Field(default=1.0, gt=0, le=10)
    readyz_require_workers: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value
