"""Clean state between tests: empty the database and Redis, keeping what the scan needs."""

from __future__ import annotations

from redis import Redis as SyncRedis

from roadmap_core.settings import AdminSettings
from roadmap_db.migrate import ensure_admin
from roadmap_db.testing import settings_for, truncate_all
from tests.support.capture import Capture, dump_rows
from tests.support.db import Db
from tests.support.sentinels import SessionSecrets


async def keep_rows(database_url: str, capture: Capture) -> None:
    """Copy what the services wrote that a person reads (logs, errors) before it is deleted."""
    db = Db(database_url)
    try:
        dump_rows(
            capture.log_dir / "execution-log-rows.jsonl",
            await db.fetch("SELECT message, details, step FROM execution_logs"),
        )
        dump_rows(
            capture.log_dir / "error-columns.jsonl",
            await db.fetch(
                "SELECT error FROM roadmap_jobs WHERE error IS NOT NULL"
                " UNION ALL SELECT error FROM content_items WHERE error IS NOT NULL"
            ),
        )
    finally:
        await db.close()


async def reset_state(
    database_url: str, redis_url: str, capture: Capture, secrets: SessionSecrets
) -> None:
    """Empty the database and Redis db, keeping what the scan needs; recreate the admin."""
    await keep_rows(database_url, capture)
    await truncate_all(database_url)
    client = SyncRedis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    await ensure_admin(
        settings_for(database_url),
        AdminSettings(admin_email=secrets.admin_email, admin_password=secrets.admin_password),
    )
