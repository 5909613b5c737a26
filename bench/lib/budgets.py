"""Connection and concurrency budgets: the services' own defaults, and what they add up to.

The values come from each service's settings class, so the benchmarks follow the
documented defaults; the runner sets them explicitly in the children's environment so the
report states exactly what each process was given, and the connection budget per
`application_name` is computed by the same settings code the services run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_settings import BaseSettings

from roadmap_api.settings import ApiSettings
from roadmap_worker_content.settings import ContentWorkerSettings
from roadmap_worker_logs.settings import LogsWorkerSettings

# Env var -> (settings class, field). Only these are made explicit.
FIELDS: dict[str, tuple[type[BaseSettings], str]] = {
    "DB_POOL_SIZE": (ApiSettings, "db_pool_size"),
    "DB_MAX_OVERFLOW": (ApiSettings, "db_max_overflow"),
    "WORKER_CONCURRENCY": (ContentWorkerSettings, "worker_concurrency"),
    "WORKER_DB_POOL_SIZE": (ContentWorkerSettings, "worker_db_pool_size"),
    "WORKER_DB_MAX_OVERFLOW": (ContentWorkerSettings, "worker_db_max_overflow"),
    "LLM_CONCURRENCY": (ContentWorkerSettings, "llm_concurrency"),
    "WORKER_LLM_SLOTS": (ContentWorkerSettings, "worker_llm_slots"),
    "LOGS_WORKER_CONCURRENCY": (LogsWorkerSettings, "logs_worker_concurrency"),
    "LOGS_DB_POOL_SIZE": (LogsWorkerSettings, "logs_db_pool_size"),
    "LOGS_DB_MAX_OVERFLOW": (LogsWorkerSettings, "logs_db_max_overflow"),
}
# The content worker's reconciler: its advisory-lock connection and one working connection.
RECONCILER_CONNECTIONS = 2


def budget_env() -> dict[str, str]:
    """Each budget setting at its default; a default of None (derived at run time) is left
    for the service to derive, and shows in the report through the computed budget."""
    out: dict[str, str] = {}
    for env_name, (cls, field) in FIELDS.items():
        default = cls.model_fields[field].default
        if default is not None:
            out[env_name] = str(default)
    return out


def _settings(cls: type[BaseSettings], env: Mapping[str, str]) -> Any:
    values = {
        field: env[name] for name, (owner, field) in FIELDS.items() if owner is cls and name in env
    }
    factory: Any = cls  # BaseSettings' __init__ is typed for its own private arguments
    return factory(**values)


def connection_budgets(env: Mapping[str, str], api_workers: int) -> dict[str, int]:
    """Most Postgres connections each service may hold, by its `application_name`."""
    api = _settings(ApiSettings, env)
    content = _settings(ContentWorkerSettings, env)
    logs = _settings(LogsWorkerSettings, env)
    return {
        "roadmap-api": api_workers * (api.db_pool_size + api.db_max_overflow),
        "roadmap-worker-content": content.worker_concurrency
        * (content.child_pool_size + content.worker_db_max_overflow)
        + RECONCILER_CONNECTIONS,
        "roadmap-worker-logs": logs.logs_worker_concurrency
        * (logs.logs_db_pool_size + logs.logs_db_max_overflow),
    }
