from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from enum import Enum

import asyncpg
import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from roadmap_db.migrate import MIGRATION_LOCK_KEY, alembic_config, head_revision
from roadmap_db.models import Base
from roadmap_db.repositories.chat import stale_pending_answers_query
from roadmap_db.settings import MigrateSettings

pytestmark = pytest.mark.asyncio


def _scratch_url(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
async def empty_db(database_url: str) -> AsyncIterator[str]:
    """A database of its own, so upgrade-from-empty runs even after the session migrated."""
    name = f"roadmap_mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _scratch_url(database_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _run_migrate(url: str, **extra_env: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url, **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "roadmap_db.cli", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_on_empty_database_creates_every_table(empty_db: str) -> None:
    proc = _run_migrate(empty_db)
    out, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 0, err
    assert f"database at revision {head_revision()}" in out
    assert set(Base.metadata.tables) | {"alembic_version"} <= await _tables(empty_db)


ADMIN_ENV = {"ADMIN_EMAIL": "Admin@Example.com", "ADMIN_PASSWORD": "a-long-admin-password"}


async def test_concurrent_migrations_with_an_admin_all_succeed(empty_db: str) -> None:
    """Several deploys (or API replicas) migrating a fresh database at once: the admin is
    bootstrapped inside the migration lock, so none of them fails on the unique email."""
    procs = [_run_migrate(empty_db, **ADMIN_ENV) for _ in range(5)]
    results = await asyncio.gather(*(asyncio.to_thread(p.communicate, timeout=180) for p in procs))
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    outcomes = sorted(out.strip().splitlines()[-1] for out, _ in results)
    assert outcomes == ["admin user: created"] + ["admin user: unchanged"] * 4
    conn = await asyncpg.connect(empty_db)
    try:
        versions = await conn.fetch("SELECT version_num FROM alembic_version")
        admins = await conn.fetch("SELECT email FROM users WHERE is_admin")
    finally:
        await conn.close()
    assert [r["version_num"] for r in versions] == [head_revision()]
    assert [r["email"] for r in admins] == ["Admin@Example.com"]


async def _hold_migration_lock(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    return conn


async def test_waiting_for_the_lock_outlasts_the_statement_timeout(empty_db: str) -> None:
    holder = await _hold_migration_lock(empty_db)
    try:
        proc = _run_migrate(empty_db, DB_STATEMENT_TIMEOUT_MS="200", MIGRATE_LOCK_TIMEOUT_S="120")
        assert proc.stderr is not None
        waiting = await asyncio.to_thread(proc.stderr.readline)  # it says so once, then waits
        assert "another migration holds the migration lock" in waiting
        assert "MIGRATE_LOCK_TIMEOUT_S" in waiting
        # Ten statement timeouts later the migration is still waiting, not failed.
        await asyncio.sleep(2.0)
        assert proc.poll() is None
    finally:
        await holder.close()  # the holder's session ends: its lock goes with it
    out, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 0, err
    assert f"database at revision {head_revision()}" in out


async def test_lock_wait_has_its_own_limit_and_says_so(empty_db: str) -> None:
    holder = await _hold_migration_lock(empty_db)
    try:
        proc = _run_migrate(empty_db, MIGRATE_LOCK_TIMEOUT_S="1")
        _, err = await asyncio.to_thread(proc.communicate, timeout=120)
        holder_pid = holder.get_server_pid()
    finally:
        await holder.close()
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("roadmap-db: another migration still holds the migration lock")
    assert f"pid {holder_pid}" in last
    assert "MIGRATE_LOCK_TIMEOUT_S=1" in last
    assert "Traceback" not in err
    assert await _tables(empty_db) == set(), "nothing ran without the lock"


async def test_lock_timeout_default_is_at_least_ten_minutes() -> None:
    assert MigrateSettings().migrate_lock_timeout_s >= 600


async def test_migrate_is_idempotent_and_bootstraps_admin_once(empty_db: str) -> None:
    outcomes = []
    for _ in range(2):
        proc = _run_migrate(empty_db, **ADMIN_ENV)
        out, err = await asyncio.to_thread(proc.communicate, timeout=120)
        assert proc.returncode == 0, err
        assert "a-long-admin-password" not in out + err
        outcomes.append(out.strip().splitlines()[-1])
    assert outcomes == ["admin user: created", "admin user: unchanged"]
    conn = await asyncpg.connect(empty_db)
    try:
        row = await conn.fetchrow("SELECT email, is_admin, password_hash FROM users")
    finally:
        await conn.close()
    assert row is not None
    assert row["is_admin"] is True
    assert row["password_hash"].startswith("$argon2id$")


async def test_admin_password_too_short_is_refused(empty_db: str) -> None:
    proc = _run_migrate(empty_db, ADMIN_EMAIL="a@example.com", ADMIN_PASSWORD="short")
    _, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 1
    assert "ADMIN_PASSWORD must be at least 12 characters" in err
    assert "short" not in err.replace("ADMIN_PASSWORD must be at least", "")


async def test_email_is_unique_case_insensitively(empty_db: str) -> None:
    proc = _run_migrate(empty_db)
    await asyncio.to_thread(proc.communicate, timeout=120)
    conn = await asyncpg.connect(empty_db)
    try:
        await conn.execute(
            "INSERT INTO users (id, email, password_hash) VALUES ($1, 'x@example.com', 'h')",
            uuid.uuid4(),
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO users (id, email, password_hash) VALUES ($1, 'X@Example.COM', 'h')",
                uuid.uuid4(),
            )
    finally:
        await conn.close()


async def _index_names(url: str, table: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", table)
        return {r["indexname"] for r in rows}
    finally:
        await conn.close()


async def test_the_pending_answers_index_serves_the_reconciler_and_downgrades(
    empty_db: str,
) -> None:
    """Migration 0010: the reconciler's query of lost chat answers uses its partial index
    (sequential scans priced out, as on a table too big to scan), and the index goes and
    comes back with a downgrade to 0009 and an upgrade."""
    proc = _run_migrate(empty_db)
    _, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 0, err
    index = "ix_chat_messages_pending_answers"
    assert index in await _index_names(empty_db, "chat_messages")

    query = stale_pending_answers_query(stale_age=timedelta(seconds=60), limit=200)
    engine = create_async_engine(empty_db.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as conn:
            # The statement exactly as the driver receives it, positional parameters and all.
            compiled = query.compile(dialect=conn.dialect)
            params = tuple(
                v.value if isinstance(v, Enum) else v
                for v in (compiled.params[name] for name in compiled.positiontup or ())
            )
            await conn.execute(text("SET enable_seqscan = off"))
            result = await conn.exec_driver_sql(f"EXPLAIN {compiled}", params)
            plan = [str(line) for line in result.scalars().all()]
        assert any(index in line for line in plan), plan

        def to(revision: str) -> Callable[[Connection], None]:
            def run(connection: Connection) -> None:
                cfg = alembic_config()
                cfg.attributes["connection"] = connection
                if revision == "head":
                    command.upgrade(cfg, revision)
                else:
                    command.downgrade(cfg, revision)

            return run

        async with engine.begin() as conn:
            await conn.run_sync(to("0009"))
        assert index not in await _index_names(empty_db, "chat_messages")
        async with engine.begin() as conn:
            await conn.run_sync(to("head"))
        assert index in await _index_names(empty_db, "chat_messages")
    finally:
        await engine.dispose()
