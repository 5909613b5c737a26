"""A worker's engine rides out a PostgreSQL restart; the API's (no window) fails at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from roadmap_core.settings import DatabaseSettings
from roadmap_db.engine import ProcessDatabase
from roadmap_devservers.embedded import EmbeddedPostgres


async def _select_one(db: ProcessDatabase) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT 1"))).scalar_one())


async def test_a_step_begun_during_a_restart_waits_for_the_server(
    own_postgres: EmbeddedPostgres,
) -> None:
    settings = DatabaseSettings(database_url=own_postgres.url, db_connect_timeout_s=1)
    riding = ProcessDatabase(settings, "outage-test", pool_size=1, outage_window_s=30)
    failing = ProcessDatabase(settings, "outage-test-api", pool_size=1)
    try:
        assert await _select_one(riding) == 1
        assert await _select_one(failing) == 1
        own_postgres.stop()
        waiting = asyncio.create_task(_select_one(riding))
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):  # no window: no wait
            await _select_one(failing)
        assert time.monotonic() - started < 5
        await asyncio.sleep(2)
        assert not waiting.done()
        await asyncio.to_thread(own_postgres.start)
        assert await asyncio.wait_for(waiting, 30) == 1
    finally:
        await riding.dispose()
        await failing.dispose()
