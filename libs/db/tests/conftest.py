from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from roadmap_db.engine import ProcessDatabase
from roadmap_db.testing import migrate_to_head, settings_for, truncate_all


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await migrate_to_head(database_url)
    return database_url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[ProcessDatabase]:
    await truncate_all(migrated_url)
    database = ProcessDatabase(settings_for(migrated_url), "roadmap-db-tests")
    yield database
    await database.dispose()
