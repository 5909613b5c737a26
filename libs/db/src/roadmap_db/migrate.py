"""Upgrade the database to head and bootstrap the admin, both under one advisory lock.

Several services may start at once (API replicas, overlapping deploys, the dev stack):
the first takes a session-level Postgres advisory lock, migrates, creates or promotes
the admin, and releases it; the others wait for it and then find nothing to do. The
admin write is an upsert on the unique ``lower(email)`` index as well, so it stays
idempotent even when called on its own (``ensure_admin``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from roadmap_core.passwords import hash_password
from roadmap_core.settings import AdminSettings, DatabaseSettings
from roadmap_db.engine import create_engine
from roadmap_db.models import User
from roadmap_db.settings import MigrateSettings

log = logging.getLogger(__name__)

# Arbitrary but fixed: the same key in every process that migrates.
MIGRATION_LOCK_KEY = 0x524F41444D4150  # "ROADMAP"
# pg_locks shows a bigint advisory key as two 32-bit halves.
_KEY_HIGH, _KEY_LOW = MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF
_LOCK_POLL_S = 0.5
MIN_ADMIN_PASSWORD = 12


class MigrationLockTimeoutError(RuntimeError):
    """Another migration held the lock for longer than MIGRATE_LOCK_TIMEOUT_S."""


@dataclass(frozen=True)
class Admin:
    """The admin to create or promote, with its password already hashed."""

    email: str
    password_hash: str

    @classmethod
    def from_settings(cls, admin: AdminSettings) -> Admin | None:
        """None when ADMIN_EMAIL/ADMIN_PASSWORD are not set; ValueError for a weak password."""
        if not admin.admin_email or admin.admin_password is None:
            return None
        password = admin.admin_password.get_secret_value()
        if len(password) < MIN_ADMIN_PASSWORD:
            raise ValueError(f"ADMIN_PASSWORD must be at least {MIN_ADMIN_PASSWORD} characters")
        return cls(email=admin.admin_email.strip(), password_hash=hash_password(password))


@dataclass(frozen=True)
class MigrationResult:
    revision: str | None
    admin: str  # created, promoted, unchanged, or why it was skipped


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


async def _lock_holder(conn: AsyncConnection) -> str:
    row = (
        await conn.execute(
            text(
                "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"
            ),
            {"high": _KEY_HIGH, "low": _KEY_LOW},
        )
    ).first()
    await conn.commit()
    if row is None:
        return "another session"
    name = f", {row.application_name}" if row.application_name else ""
    return f"Postgres backend pid {row.pid}{name}, connected since {row.backend_start:%H:%M:%S %Z}"


async def acquire_migration_lock(
    conn: AsyncConnection, timeout_s: float, notify: Callable[[str], None]
) -> None:
    """Take the migration lock, waiting up to ``timeout_s`` for its holder.

    Polls ``pg_try_advisory_lock`` instead of blocking in ``pg_advisory_lock``: each try
    returns at once, so ``statement_timeout`` never ends the wait, and the wait has its
    own limit and says what it waits for.
    """
    started = time.monotonic()
    announced = False
    while True:
        locked = (
            await conn.execute(select(func.pg_try_advisory_lock(MIGRATION_LOCK_KEY)))
        ).scalar_one()
        await conn.commit()
        if locked:
            if announced:
                notify(f"migration lock acquired after {time.monotonic() - started:.1f}s")
            return
        waited = time.monotonic() - started
        if not announced:
            holder = await _lock_holder(conn)
            notify(
                f"another migration holds the migration lock ({holder}); waiting up to"
                f" {timeout_s:g}s for it (MIGRATE_LOCK_TIMEOUT_S)"
            )
            announced = True
        if waited >= timeout_s:
            holder = await _lock_holder(conn)
            raise MigrationLockTimeoutError(
                f"another migration still holds the migration lock after {waited:.0f}s"
                f" ({holder}); gave up (MIGRATE_LOCK_TIMEOUT_S={timeout_s:g}). If a migration"
                " is still running, let it finish or raise MIGRATE_LOCK_TIMEOUT_S; the lock"
                " goes away with the session that holds it"
            )
        await asyncio.sleep(min(_LOCK_POLL_S, timeout_s - waited))


async def _ensure_admin_on(conn: AsyncConnection, admin: Admin) -> str:
    created = await conn.execute(
        insert(User)
        .values(
            email=admin.email,
            password_hash=admin.password_hash,
            display_name="Administrator",
            is_admin=True,
        )
        .on_conflict_do_nothing(index_elements=[func.lower(User.email)])
        .returning(User.id)
    )
    if created.first() is not None:
        return "created"
    promoted = await conn.execute(
        update(User)
        .where(func.lower(User.email) == admin.email.lower(), User.is_admin.is_(False))
        .values(is_admin=True)
        .returning(User.id)
    )
    return "promoted" if promoted.first() is not None else "unchanged"


async def migrate(
    settings: DatabaseSettings,
    *,
    revision: str = "head",
    admin: Admin | None = None,
    lock_timeout_s: float = MigrateSettings.model_fields["migrate_lock_timeout_s"].default,
    notify: Callable[[str], None] = log.info,
) -> MigrationResult:
    """Upgrade to ``revision`` and bootstrap ``admin``; safe to run repeatedly and concurrently."""
    engine = create_engine(settings, "roadmap-migrate", null_pool=True)
    try:
        async with engine.connect() as conn:
            # Session-level lock on this dedicated connection; released in finally (and by
            # Postgres if the process dies).
            await acquire_migration_lock(conn, lock_timeout_s, notify)
            try:
                await conn.run_sync(_upgrade, revision)
                await conn.commit()
                outcome = "skipped (ADMIN_EMAIL/ADMIN_PASSWORD not set)"
                if admin is not None:
                    outcome = await _ensure_admin_on(conn, admin)
                    await conn.commit()
                return MigrationResult(await current_revision(conn), outcome)
            finally:
                await conn.rollback()
                await conn.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
                await conn.commit()
    finally:
        await engine.dispose()


async def ensure_admin(db: DatabaseSettings, admin: AdminSettings) -> str:
    """Create or promote the admin named by ADMIN_EMAIL. Never changes an existing password."""
    wanted = Admin.from_settings(admin)
    if wanted is None:
        return "skipped (ADMIN_EMAIL/ADMIN_PASSWORD not set)"
    engine = create_engine(db, "roadmap-migrate", null_pool=True)
    try:
        async with engine.begin() as conn:
            return await _ensure_admin_on(conn, wanted)
    finally:
        await engine.dispose()


def run(revision: str = "head") -> None:
    settings = MigrateSettings()
    admin = Admin.from_settings(settings)  # a weak password fails before anything runs

    def notify(message: str) -> None:
        print(f"roadmap-db: {message}", file=sys.stderr, flush=True)

    result = asyncio.run(
        migrate(
            settings,
            revision=revision,
            admin=admin,
            lock_timeout_s=settings.migrate_lock_timeout_s,
            notify=notify,
        )
    )
    log.info("database at revision %s", result.revision)
    print(f"database at revision {result.revision}")
    print(f"admin user: {result.admin}")
