"""Settings mixins composed by each process into one ``BaseSettings`` class.

Every process (API, content worker, logs worker, CLI) builds exactly one
settings object from the environment. URLs are accepted in the shapes Railway
and Heroku-style providers emit and normalised to the drivers we use.
"""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "secret",
        "dev",
        "dev-secret",
        "development",
        "insecure",
        "password",
        "test",
        "sk-fake",
        "fake",
    }
)
MIN_SECRET_LENGTH = 32


class AppEnv(StrEnum):
    development = "development"
    test = "test"
    production = "production"


def normalise_postgres_url(url: str) -> str:
    """Return ``url`` with the asyncpg driver, whatever scheme the provider used."""
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def plain_postgres_url(url: str) -> str:
    """Return ``url`` as libpq/asyncpg understand it (no SQLAlchemy driver suffix)."""
    if url.startswith("postgresql+asyncpg://"):
        return "postgresql://" + url[len("postgresql+asyncpg://") :]
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    app_env: AppEnv = AppEnv.development
    log_level: str = "INFO"
    log_json: bool = True

    @property
    def is_production(self) -> bool:
        return self.app_env is AppEnv.production


class DatabaseSettings(CommonSettings):
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/roadmap"
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=5, ge=0, le=100)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_pool_recycle_s: int = Field(default=1800, ge=60)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _normalise_db(cls, value: str) -> str:
        return normalise_postgres_url(value.strip())


class RedisSettings(CommonSettings):
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_broker_url: str | None = None
    # Longer than the hard time limit of the longest task (see celery_app).
    broker_visibility_timeout_s: int = Field(default=3600, ge=60)
    redis_socket_timeout_s: float = Field(default=5.0, gt=0)
    progress_stream_maxlen: int = Field(default=2000, ge=10)
    progress_stream_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    @field_validator("redis_url")
    @classmethod
    def _strip_redis(cls, value: str) -> str:
        return value.strip()

    @field_validator("celery_broker_url")
    @classmethod
    def _redis_broker(cls, value: str | None) -> str | None:
        # The API pushes task messages onto the broker's Redis lists itself, and
        # /admin/queues reads their lengths: only a Redis broker works.
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("redis://", "rediss://")):
            raise ValueError("must be a Redis URL (redis:// or rediss://)")
        return value

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url


class ModelPrice(BaseModel):
    """USD per one million tokens."""

    input: Decimal = Decimal("0")
    output: Decimal = Decimal("0")
    # Prompt tokens the provider served from its prompt cache
    # (usage.prompt_tokens_details.cached_tokens); None: charged as ``input``.
    cached_input: Decimal | None = None


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(
        input=Decimal("0.15"), cached_input=Decimal("0.075"), output=Decimal("0.60")
    ),
    "gpt-4o": ModelPrice(
        input=Decimal("2.50"), cached_input=Decimal("1.25"), output=Decimal("10.00")
    ),
    "gpt-4.1-mini": ModelPrice(
        input=Decimal("0.40"), cached_input=Decimal("0.10"), output=Decimal("1.60")
    ),
    "gpt-4.1": ModelPrice(
        input=Decimal("2.00"), cached_input=Decimal("0.50"), output=Decimal("8.00")
    ),
}


class OutageSettings(CommonSettings):
    # Redis or PostgreSQL not answering is retried with backoff for this long before the
    # step fails (roadmap_core.outages): a restart shorter than this costs no LLM attempt.
    infra_outage_window_s: float = Field(default=60.0, ge=0, le=600)


class LLMSettings(OutageSettings):
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_planning_model: str | None = None
    llm_content_model: str | None = None
    llm_timeout_s: float = Field(default=120.0, gt=0)
    # Retries done inside the SDK for one logical call (429/5xx/timeouts).
    llm_sdk_max_retries: int = Field(default=2, ge=0, le=10)
    # Task-level attempts of one content item or plan (each may do SDK retries).
    llm_task_max_attempts: int = Field(default=3, ge=1, le=10)
    llm_max_output_tokens: int = Field(default=4096, ge=256)
    llm_temperature: float = Field(default=0.4, ge=0, le=2)
    llm_rpm: int = Field(default=500, ge=1, description="global requests/minute, all workers")
    llm_tpm: int = Field(default=2_000_000, ge=1000, description="global tokens/minute")
    llm_concurrency: int = Field(default=8, ge=1, le=256, description="per worker process")
    llm_prices: Annotated[dict[str, ModelPrice], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES)
    )
    max_concepts: int = Field(default=40, ge=1, le=200)
    max_stages: int = Field(default=8, ge=1, le=50)
    max_repair_rounds: int = Field(default=2, ge=0, le=10)
    # Planned hours may exceed weekly_hours * weeks by this fraction (estimates are rough).
    plan_hours_tolerance: float = Field(default=0.10, ge=0, le=1)
    # The global limiter enforces llm_rpm/llm_tpm scaled to windows of this length:
    # 60 = per minute; shorter windows smooth bursts (providers quantise limits too).
    llm_rate_window_s: float = Field(default=60.0, ge=0.5, le=3600)
    # Admissions count over LLM_RATE_WINDOW_S plus this margin: the longest a request may
    # take from admission to its arrival at the provider with the limits still holding
    # there (roadmap_core.llm.ratelimit). Costs margin / (window + margin) of the rate.
    llm_rate_margin_s: float = Field(default=0.5, ge=0, le=60)
    # Calls in flight at the provider across every process and replica (a Redis
    # semaphore): what self-hosted OpenAI-compatible servers limit. None: only
    # LLM_CONCURRENCY per process.
    llm_max_in_flight: int | None = Field(default=None, ge=1, le=100_000)
    # How long one request may wait for the global limiter before failing (retryable).
    llm_rate_max_wait_s: float = Field(default=60.0, gt=0, le=3600)
    # A 429 asking to wait longer than this is not slept on inside the call: it fails as
    # rate_limited (retryable, with retry_after_s) so the task can be retried later.
    llm_max_retry_after_s: float = Field(default=30.0, ge=0, le=120)

    @field_validator("llm_prices", mode="before")
    @classmethod
    def _parse_prices(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @property
    def planning_model(self) -> str:
        return self.llm_planning_model or self.llm_model

    @property
    def content_model(self) -> str:
        return self.llm_content_model or self.llm_model

    @model_validator(mode="after")
    def _production_key(self) -> Self:
        if self.is_production and self.openai_base_url is None:
            key = self.openai_api_key.get_secret_value() if self.openai_api_key else ""
            if key.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError("OPENAI_API_KEY must be set in production")
        return self


class AuthSettings(CommonSettings):
    jwt_secret_key: SecretStr = SecretStr("dev-secret")
    jwt_issuer: str = "roadmap-agent"
    jwt_audience: str = "roadmap-agent-api"
    access_token_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _strong_secret(self) -> Self:
        if self.is_production:
            secret = self.jwt_secret_key.get_secret_value()
            if secret.strip().lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"JWT_SECRET_KEY must be a random string of at least {MIN_SECRET_LENGTH}"
                    " characters in production"
                )
        return self


class AdminSettings(CommonSettings):
    admin_email: str | None = None
    admin_password: SecretStr | None = None


class MetricsSettings(CommonSettings):
    """Prometheus metrics of a service (``roadmap_core.metrics``)."""

    # Metrics answer only ``Authorization: Bearer <METRICS_TOKEN>``; unset: not served.
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    # Sum the samples of every process of the service (uvicorn workers, Celery prefork
    # children) through files in a shared directory (PROMETHEUS_MULTIPROC_DIR, or one of
    # our own in the temp folder). Off: each process reports only itself (in-process tests).
    metrics_multiprocess: bool = True


class WorkerMetricsSettings(MetricsSettings):
    """Where a worker's main process serves its metrics (with ``METRICS_TOKEN`` set)."""

    # Railway's private network reaches it as <service>.railway.internal:<port>.
    # 127.0.0.1 for a local run; the images set 0.0.0.0 (the token still guards it).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=1, le=65535)


class LogShipSettings(CommonSettings):
    """How execution-log events are buffered and shipped to the logs queue."""

    log_batch_size: int = Field(default=500, ge=1, le=10_000)
    log_flush_interval_ms: int = Field(default=200, ge=10, le=60_000)
    log_buffer_max: int = Field(default=100_000, ge=100)
    log_details_max_bytes: int = Field(default=8192, ge=256)
    log_retention_days: int = Field(default=30, ge=1)


class SearchProviderName(StrEnum):
    brave = "brave"
    searxng = "searxng"


class SearchSettings(CommonSettings):
    """Web search for resources and the link checker (``roadmap_core.search``)."""

    search_provider: SearchProviderName | None = None
    # Brave Search's subscription token (a secret: never logged, never in an error).
    search_api_key: SecretStr | None = None
    # SearXNG's address (required for it); for Brave, a different API host (tests).
    search_base_url: str | None = None
    search_results: int = Field(default=10, ge=1, le=20, description="results asked per query")
    search_timeout_s: float = Field(default=10.0, gt=0, le=60)
    link_check_concurrency: int = Field(default=10, ge=1, le=100)
    link_check_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Connect to 127.0.0.0/8 and ::1 (the dev stack's and tests' fake pages); refused in
    # production. Private, link-local and metadata addresses stay refused either way.
    link_check_allow_loopback: bool = False
    # Host names (exact) whose addresses the checker does not classify: the container
    # tests' fake search on its private network. Empty in every real deployment.
    link_check_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The reconciler re-checks stored resources older than this, a batch per pass.
    link_recheck_interval_s: float = Field(default=7 * 24 * 3600.0, ge=1, le=365 * 24 * 3600)
    link_recheck_batch: int = Field(default=20, ge=1, le=1000)

    @field_validator("link_check_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @model_validator(mode="after")
    def _search_complete(self) -> Self:
        if self.search_provider is SearchProviderName.brave:
            key = self.search_api_key.get_secret_value() if self.search_api_key else ""
            if key.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError("SEARCH_API_KEY must be set for SEARCH_PROVIDER=brave")
        if self.search_provider is SearchProviderName.searxng and not self.search_base_url:
            raise ValueError("SEARCH_BASE_URL must be set for SEARCH_PROVIDER=searxng")
        if self.is_production and self.link_check_allow_loopback:
            raise ValueError("LINK_CHECK_ALLOW_LOOPBACK is for the dev stack and tests only")
        return self
