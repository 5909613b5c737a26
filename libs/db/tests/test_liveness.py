"""A pooled connection is checked in one round trip on checkout, and a dead one replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy import text

from roadmap_core.settings import plain_postgres_url
from roadmap_db.engine import ProcessDatabase
from roadmap_db.testing import settings_for


async def _backend_pid(db: ProcessDatabase) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _raw(db: ProcessDatabase) -> asyncpg.Connection:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        return raw.driver_connection


async def test_a_checkout_checks_its_connection_in_one_statement(migrated_url: str) -> None:
    db = ProcessDatabase(settings_for(migrated_url), "liveness-test", pool_size=1)
    try:
        pid = await _backend_pid(db)  # the pool's one connection, opened (and not checked)
        raw = await _raw(db)
        sent: list[str] = []

        def log(record: Any) -> None:
            sent.append(record.query)

        raw.add_query_logger(log)
        sent.clear()
        async with db.engine.connect() as conn:
            await asyncio.sleep(0)  # asyncpg hands records to its loggers with call_soon
            before = list(sent)  # what the checkout sent
            same = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
        # SQLAlchemy's own pre-ping sends BEGIN, ; and ROLLBACK here.
        assert before == ["SELECT 1"]
        assert same
    finally:
        await db.dispose()


async def test_a_connection_the_server_ended_is_replaced_on_checkout(migrated_url: str) -> None:
    db = ProcessDatabase(settings_for(migrated_url), "liveness-test", pool_size=1)
    killer = await asyncpg.connect(plain_postgres_url(migrated_url))
    try:
        old = await _backend_pid(db)
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", old)
        assert await _backend_pid(db) != old  # no error: a new connection answered
    finally:
        await killer.close()
        await db.dispose()
