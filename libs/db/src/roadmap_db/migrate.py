"""Upgrade the database to head under a Postgres advisory lock, then bootstrap the admin.

Several services may start at once (or one service with replicas); the lock
makes the second wait for the first and then find nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from roadmap_core.passwords import hash_password
from roadmap_core.settings import AdminSettings, DatabaseSettings
from roadmap_db.engine import create_engine
from roadmap_db.models import User

log = logging.getLogger(__name__)

# Arbitrary but fixed: the same key in every process that migrates.
MIGRATION_LOCK_KEY = 0x524F41444D4150  # "ROADMAP"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(str(files("roadmap_db") / "migrations"))))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(conn: AsyncConnection) -> str | None:
    return await conn.run_sync(_current)


async def migrate(settings: DatabaseSettings, *, revision: str = "head") -> str | None:
    """Upgrade to ``revision``; safe to run repeatedly and concurrently. Returns the new head."""
    engine = create_engine(settings, "roadmap-migrate", null_pool=True)
    try:
        async with engine.connect() as conn:
            # Session-level lock on this dedicated connection; released in finally.
            await conn.execute(select(func.pg_advisory_lock(MIGRATION_LOCK_KEY)))
            await conn.commit()
            try:
                await conn.run_sync(_upgrade, revision)
                await conn.commit()
                return await current_revision(conn)
            finally:
                await conn.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
                await conn.commit()
    finally:
        await engine.dispose()


async def ensure_admin(db: DatabaseSettings, admin: AdminSettings) -> str:
    """Create or promote the admin named by ADMIN_EMAIL. Never changes an existing password."""
    if not admin.admin_email or admin.admin_password is None:
        return "skipped (ADMIN_EMAIL/ADMIN_PASSWORD not set)"
    password = admin.admin_password.get_secret_value()
    if len(password) < 12:
        raise ValueError("ADMIN_PASSWORD must be at least 12 characters")
    email = admin.admin_email.strip()
    engine = create_engine(db, "roadmap-migrate", null_pool=True)
    try:
        async with engine.begin() as conn:
            existing = (
                await conn.execute(
                    select(User.id, User.is_admin).where(func.lower(User.email) == email.lower())
                )
            ).first()
            if existing is None:
                await conn.execute(
                    insert(User).values(
                        email=email,
                        password_hash=hash_password(password),
                        display_name="Administrator",
                        is_admin=True,
                    )
                )
                return "created"
            if not existing.is_admin:
                await conn.execute(
                    text("UPDATE users SET is_admin = true WHERE id = :id"), {"id": existing.id}
                )
                return "promoted"
            return "unchanged"
    finally:
        await engine.dispose()


def run(revision: str = "head") -> None:
    db = DatabaseSettings()
    head = asyncio.run(migrate(db, revision=revision))
    log.info("database at revision %s", head)
    print(f"database at revision {head}")
    outcome = asyncio.run(ensure_admin(db, AdminSettings()))
    print(f"admin user: {outcome}")
