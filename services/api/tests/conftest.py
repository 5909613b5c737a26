"""Fixtures of the API's tests: the app wired to this session's real Postgres and Redis.

Celery's producer points at the session Redis, so a test asserts what was enqueued by
reading the queue list. Every test starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import delete

from roadmap_api.main import create_app
from roadmap_api.settings import ApiSettings
from roadmap_api.testing import (
    PASSWORD,
    TEST_SECRET,
    Account,
    Seeder,
    make_account,
    queued_tasks,
)
from roadmap_core import logship
from roadmap_core.contracts import LOGS_QUEUE
from roadmap_core.logdetails import parse_produced
from roadmap_core.passwords import hash_password
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import ExecutionLog, User
from roadmap_db.testing import migrate_to_head, settings_for

AppFactory = Callable[..., Awaitable[FastAPI]]
METRICS_TOKEN = "scrape-" + "0123456789abcdef" * 2


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await migrate_to_head(database_url)
    return database_url


@pytest.fixture(scope="session")
def password_hash() -> str:
    # argon2id is slow on purpose: hash the shared test password once per session.
    return hash_password(PASSWORD)


def settings_with(database_url: str, redis_url: str, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret_key": TEST_SECRET,
        "readyz_require_workers": False,
        "log_json": True,
        "enqueue_timeout_s": 3.0,
        # Many apps share the test server (and other sessions may too): open on demand.
        "db_pool_prewarm": 0,
        "metrics_token": METRICS_TOKEN,
        # Many apps in one test process: each counts only its own requests.
        "metrics_multiprocess": False,
    }
    values.update(overrides)
    return ApiSettings(**values)


@pytest.fixture(scope="session")
async def app(migrated_url: str, redis_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings_with(migrated_url, redis_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def app_factory(migrated_url: str, redis_url: str) -> AsyncIterator[AppFactory]:
    """Apps with other settings (quotas, limits, broken backends), shut down after the test."""
    async with AsyncExitStack() as stack:

        async def build(**overrides: Any) -> FastAPI:
            values = {"database_url": migrated_url, "redis_url": redis_url, **overrides}
            application = create_app(settings_with(**values))
            await stack.enter_async_context(application.router.lifespan_context(application))
            return application

        yield build


def client_for(application: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def cleaner(migrated_url: str) -> AsyncIterator[ProcessDatabase]:
    database = ProcessDatabase(settings_for(migrated_url), "roadmap-api-tests-cleaner")
    yield database
    await database.dispose()


@pytest.fixture(autouse=True)
async def logged_details_are_declared(redis: Redis) -> AsyncIterator[None]:
    """Every execution-log event the API logs in a test is of a kind the contract declares.

    The events wait in the ``logs`` queue (no logs worker here); ``parse_produced`` refuses
    a kind or a shape that ``roadmap_core.logdetails`` does not declare.
    """
    yield
    # An outage test leaves its events pending: those are not the API's answer to check.
    if logship.stats().pending:
        await asyncio.to_thread(logship.flush, 2)
    for task in await queued_tasks(redis, LOGS_QUEUE):
        for event in task.payload["events"]:
            parse_produced(event["details"])


@pytest.fixture(autouse=True)
async def clean_state(migrated_url: str, cleaner: ProcessDatabase, redis: Redis) -> None:
    # Every table hangs off users (ON DELETE CASCADE) except the logs: two DELETEs are much
    # faster than TRUNCATE of every table, which pays per table even when they are tiny.
    async with cleaner.transaction() as session:
        await session.execute(delete(User))
        await session.execute(delete(ExecutionLog))
    await redis.flushdb()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[ProcessDatabase]:
    database = ProcessDatabase(settings_for(migrated_url), "roadmap-api-tests")
    yield database
    await database.dispose()


@pytest.fixture
def seed(db: ProcessDatabase) -> Seeder:
    return Seeder(db)


@pytest.fixture
async def alice(db: ProcessDatabase, password_hash: str) -> Account:
    return await make_account(db, "alice@example.com", password_hash)


@pytest.fixture
async def bob(db: ProcessDatabase, password_hash: str) -> Account:
    return await make_account(db, "bob@example.com", password_hash)


@pytest.fixture
async def admin(db: ProcessDatabase, password_hash: str) -> Account:
    return await make_account(db, "root@example.com", password_hash, is_admin=True)
