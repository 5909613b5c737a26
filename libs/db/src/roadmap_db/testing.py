"""Helpers for test suites of members that use the database (no pytest import here)."""

from __future__ import annotations

from sqlalchemy import text

from roadmap_core.settings import DatabaseSettings, normalise_postgres_url
from roadmap_db.engine import create_engine
from roadmap_db.migrate import migrate
from roadmap_db.models import Base


def settings_for(database_url: str, **overrides: object) -> DatabaseSettings:
    return DatabaseSettings(database_url=normalise_postgres_url(database_url), **overrides)  # type: ignore[arg-type]


async def migrate_to_head(database_url: str) -> None:
    await migrate(settings_for(database_url))  # no admin: tests create their own users


async def truncate_all(database_url: str) -> None:
    """Empty every application table (keeps the schema and alembic_version)."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    engine = create_engine(settings_for(database_url), "roadmap-tests", null_pool=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()
