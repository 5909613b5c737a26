"""Settings of ``roadmap-db migrate`` (read from the environment, like every process's)."""

from __future__ import annotations

from pydantic import Field

from roadmap_core.settings import AdminSettings, DatabaseSettings


class MigrateSettings(DatabaseSettings, AdminSettings):
    # How long a migration waits for another one to finish before it gives up. Long on
    # purpose: a deploy that overlaps a slow migration should wait for it, not fail. The
    # wait polls with short statements, so DB_STATEMENT_TIMEOUT_MS never cuts it.
    migrate_lock_timeout_s: float = Field(default=900.0, gt=0)
