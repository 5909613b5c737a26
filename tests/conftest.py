"""Fixtures of the root (cross-service) tests.

Servers: the session's ``database_url`` / ``redis_url`` (roadmap_devservers plugin), or a
test's private ``own_postgres`` / ``own_redis`` when it stops or restarts them.

Processes: ``stack`` starts nothing by itself; a test calls ``stack.start(...)`` with the
processes and settings (environment variables of the services' settings modules) it needs.
``stack_on(database_url=..., redis_url=...)`` builds a stack on private servers. Every
process is stopped by pid in teardown, also when the test failed.

Promise 17: every process's output, this process's log records, HTTP error bodies and the
execution-log rows of each test are kept in one capture dir; ``test_p17_*`` and the
session-finish hook scan all of it for every secret the suite used.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from roadmap_api.main import create_app
from roadmap_api.settings import ApiSettings
from roadmap_db.testing import migrate_to_head
from roadmap_dev.fake_llm import FakeLLM
from tests.support.capture import AsyncRecordingTransport, Capture, FileLogHandler
from tests.support.db import Db
from tests.support.sentinels import SecretRegistry, SessionSecrets
from tests.support.stack import FakeLLMProcess, Stack, start_fake_llm
from tests.support.state import reset_state

# What every test starts from; a test changes it with ``fake.configure(...)``.
DEFAULT_FAKE: dict[str, Any] = {
    "latency_ms": 50.0,
    "jitter_ms": 0.0,
    "fault_rate": 0.0,
    "rules": [],
    "concepts": 3,
    "retry_after_s": 0.2,
    "timeout_s": 60.0,
}

_CAPTURE_KEY = pytest.StashKey[Capture]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "secret_scan: scans everything captured so far; runs after the other tests"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The secret scan looks at what the other tests produced: it goes last.
    last = [i for i in items if i.get_closest_marker("secret_scan")]
    if last:
        items[:] = [i for i in items if i not in last] + last


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    capture = session.config.stash.get(_CAPTURE_KEY, None)
    if capture is None:
        return
    findings = capture.scan()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"secret scan (promise 17): {len(capture.secrets)} secrets, "
            f"{len(capture.files())} captured files, {capture.error_bodies} error bodies: "
            f"{len(findings)} findings"
        )
        for finding in findings[:20]:
            reporter.write_line(f"  LEAK {finding}", red=True)
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- session-wide: secrets, capture, servers ------------------------------------------------


@pytest.fixture(scope="session")
def session_secrets() -> SessionSecrets:
    return SessionSecrets()


@pytest.fixture(scope="session")
def capture(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    session_secrets: SessionSecrets,
) -> Iterator[Capture]:
    registry = SecretRegistry()
    registry.extend(session_secrets.values())
    result = Capture(tmp_path_factory.mktemp("captured"), registry)
    request.config.stash[_CAPTURE_KEY] = result
    handler = FileLogHandler(result.log_dir / "in-process.log")
    logging.getLogger().addHandler(handler)
    # One INFO line per poll of the fake's request log would drown everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        yield result
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True)
def _capture_everything(capture: Capture) -> Capture:
    """Every root test records into the capture dir (from its first line on)."""
    return capture


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await migrate_to_head(database_url)
    return database_url


@pytest.fixture
async def clean_state(
    migrated_url: str, redis_url: str, capture: Capture, session_secrets: SessionSecrets
) -> AsyncIterator[str]:
    """The session database and Redis db, empty (but for the admin) before and after."""
    await reset_state(migrated_url, redis_url, capture, session_secrets)
    yield migrated_url
    await reset_state(migrated_url, redis_url, capture, session_secrets)


@pytest.fixture
async def db(clean_state: str) -> AsyncIterator[Db]:
    database = Db(clean_state)
    yield database
    await database.close()


# -- the fake LLM ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_llm_process(capture: Capture) -> Iterator[FakeLLMProcess]:
    process = start_fake_llm(capture.log_dir, **DEFAULT_FAKE)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def fake(fake_llm_process: FakeLLMProcess) -> FakeLLM:
    """The session's fake LLM with the default configuration and an empty request log."""
    if not fake_llm_process.running:
        raise RuntimeError(f"the fake LLM died:\n{fake_llm_process.log()}")
    fake_llm_process.fake.configure(**DEFAULT_FAKE)
    fake_llm_process.fake.reset()
    return fake_llm_process.fake


# -- process stacks --------------------------------------------------------------------------


@pytest.fixture
def stack_on(
    fake: FakeLLM, session_secrets: SessionSecrets, capture: Capture
) -> Iterator[Callable[..., Stack]]:
    """``stack_on(database_url=..., redis_url=..., env={...})`` → a Stack stopped at teardown."""
    stacks: list[Stack] = []

    def make(*, database_url: str, redis_url: str, env: dict[str, str] | None = None) -> Stack:
        stack = Stack(
            database_url=database_url,
            redis_url=redis_url,
            fake=fake,
            secrets=session_secrets,
            capture=capture,
            env=env,
        )
        stacks.append(stack)
        return stack

    yield make
    errors = []
    for stack in reversed(stacks):
        try:
            stack.stop()
        except BaseException as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def stack(clean_state: str, redis_url: str, stack_on: Callable[..., Stack]) -> Stack:
    """A stack on the session's (clean) database and Redis; call ``stack.start(...)``."""
    return stack_on(database_url=clean_state, redis_url=redis_url)


# -- the API in-process ----------------------------------------------------------------------


def api_settings(
    database_url: str, redis_url: str, secrets: SessionSecrets, **overrides: Any
) -> ApiSettings:
    values: dict[str, Any] = {
        "app_env": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret_key": secrets.jwt_secret_key,
        "enqueue_timeout_s": 1.0,
        "readyz_require_workers": False,
        # In-process apps of one test process: each app counts only its own requests.
        "metrics_multiprocess": False,
        **overrides,
    }
    return ApiSettings(**values)


@pytest.fixture(scope="session")
async def asgi_app(
    migrated_url: str, redis_url: str, session_secrets: SessionSecrets
) -> AsyncIterator[FastAPI]:
    """One in-process app on the session's servers, its lifespan running for the session."""
    app = create_app(
        api_settings(
            migrated_url,
            redis_url,
            session_secrets,
            login_max_failures=3,
            login_window_s=60,
            quota_max_active_jobs=50,
            quota_jobs_per_day=500,
            quota_tokens_per_day=10**12,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(
    asgi_app: FastAPI, clean_state: str, capture: Capture
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client onto the in-process app (clean state); every answer is recorded."""
    transport = AsyncRecordingTransport(capture, httpx.ASGITransport(app=asgi_app))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=10.0
    ) as client:
        yield client
