"""Fixtures of the content worker's tests.

Real Postgres and Redis come from the ``roadmap_devservers`` plugin; the fake
LLM runs in a subprocess for the whole session and is reset before each test;
workers are real ``celery worker`` processes started with the session's URLs
and stopped by pid in teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from roadmap_core.celery_app import create_celery_app
from roadmap_core.settings import RedisSettings
from roadmap_db.engine import ProcessDatabase
from roadmap_db.testing import migrate_to_head, settings_for, truncate_all
from roadmap_dev.fake_llm import FakeLLM, fake_llm_server
from roadmap_worker_content.testing import Rows, WorkerFactory, WorkerProcess, start_worker

FAKE_DEFAULTS: dict[str, Any] = {
    "latency_ms": 20.0,
    "jitter_ms": 0.0,
    "fault_rate": 0.0,
    "rules": [],
    "concepts": 4,
    "retry_after_s": 0.1,
    "timeout_s": 30.0,
}


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await migrate_to_head(database_url)
    return database_url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[ProcessDatabase]:
    await truncate_all(migrated_url)
    database = ProcessDatabase(settings_for(migrated_url), "roadmap-worker-content-tests")
    yield database
    await database.dispose()


@pytest.fixture
def rows(db: ProcessDatabase) -> Rows:
    return Rows(db)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeLLM]:
    with fake_llm_server(**FAKE_DEFAULTS) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeLLM) -> FakeLLM:
    """The session's fake LLM, back to the defaults with an empty request log."""
    fake_server.configure(**FAKE_DEFAULTS)
    fake_server.reset()
    return fake_server


@pytest.fixture(scope="session")
def celery_client(redis_url: str) -> Iterator[Celery]:
    """A producer like the API's: sends tasks by name, runs none."""
    app = create_celery_app("worker-content-tests", RedisSettings(redis_url=redis_url))
    yield app
    app.close()


@pytest.fixture
def workers(
    migrated_url: str, redis_url: str, fake_server: FakeLLM, tmp_path: Path
) -> Iterator[WorkerFactory]:
    """Start content workers (``start(concurrency=…, env={…})``); all stopped after the test."""
    started: list[WorkerProcess] = []

    def start(**kwargs: Any) -> WorkerProcess:
        kwargs.setdefault("concurrency", 2)
        worker = start_worker(
            database_url=migrated_url,
            redis_url=redis_url,
            llm_base_url=fake_server.base_url,
            log_dir=tmp_path,
            **kwargs,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
