"""pytest plugin (entry point `pytest11`): real Postgres and Redis fixtures, never a skip.

Session fixtures:
- `pg_server_url`: admin URL of the server (env URL, testcontainers or embedded);
- `database_url`: a fresh, empty `roadmap_test_<random>` database on it, dropped at the end;
- `redis_server_url`: URL of the Redis server (db 0);
- `redis_url`: this session's Redis database, flushed at start and end (on a shared server a
  claimed index 1-15, else db 0).
Function fixtures `own_postgres` / `own_redis` start a private embedded server a test may
stop, start and restart (also under `TEST_SERVERS=containers`: they exist to be killed).

Tests marked `containers` need a container engine; they are deselected unless the `-m`
expression names the marker (`uv run pytest -m containers`), so a plain run needs no engine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from roadmap_devservers import provide
from roadmap_devservers._process import private_temp_dir
from roadmap_devservers.embedded import EmbeddedPostgres, EmbeddedRedis

# Import asyncpg/redis only when a fixture runs: this plugin loads in every pytest session.


# Declared with the other markers in the root pyproject.toml.
CONTAINERS_MARKER = "containers"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CONTAINERS_MARKER in (config.getoption("markexpr", "") or ""):
        return
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        (kept if item.get_closest_marker(CONTAINERS_MARKER) is None else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Admin URL of a real PostgreSQL server: TEST_DATABASE_URL, testcontainers or embedded."""
    with provide.provide_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> Iterator[str]:
    """`postgresql://` URL of an empty `roadmap_test_<random>` database, dropped at the end."""
    from roadmap_devservers.pgdb import temporary_database

    with temporary_database(pg_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """URL (db 0) of a real Redis server: TEST_REDIS_URL, testcontainers or embedded."""
    with provide.provide_redis() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(redis_server_url: str) -> Iterator[str]:
    """This session's Redis database (claimed index 1-15 when shared), flushed before/after."""
    from roadmap_devservers.redisdb import claimed_redis_db, owned_redis_db
    from roadmap_devservers.urls import with_path

    if provide.redis_is_shared():
        with claimed_redis_db(redis_server_url) as url:
            yield url
    else:
        with owned_redis_db(with_path(redis_server_url, "0")) as url:
            yield url


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A private, started embedded PostgreSQL (for tests that stop/restart the database)."""
    with private_temp_dir("roadmap-own-pg-") as data_dir, EmbeddedPostgres(data_dir) as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A private, started embedded Redis (for tests that stop/restart Redis)."""
    with private_temp_dir("roadmap-own-redis-") as data_dir, EmbeddedRedis(data_dir) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Say which servers the session used, so "which Postgres did CI test against?" has an answer.
    for choice in provide.choices:
        terminalreporter.write_line(f"roadmap-devservers: {choice}")
    if provide.choices and provide.server_mode() != "auto":
        terminalreporter.write_line(
            f"roadmap-devservers: {provide.TEST_SERVERS}={provide.server_mode()} "
            "(no other source was allowed)"
        )
