from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest
import redis

from roadmap_devservers import provide
from roadmap_devservers.errors import DevServerError
from roadmap_devservers.urls import plain_postgres_url, redact, with_path


@pytest.fixture(autouse=True)
def _own_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep these tests' choices out of the session summary of the real fixtures, and the
    # session's own TEST_SERVERS out of these tests.
    monkeypatch.setattr(provide, "choices", [])
    monkeypatch.delenv(provide.TEST_SERVERS, raising=False)


def test_env_urls_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://u:secret@db.invalid:5432/x")
    monkeypatch.setenv("TEST_REDIS_URL", "redis://cache.invalid:6379/0")
    monkeypatch.setattr(provide, "docker_available", lambda: pytest.fail("must not probe Docker"))
    with provide.provide_postgres() as pg_url, provide.provide_redis() as redis_url:
        assert pg_url == "postgresql://u:secret@db.invalid:5432/x"
        assert redis_url == "redis://cache.invalid:6379/0"
    assert provide.redis_is_shared()
    assert "secret" not in " ".join(provide.choices)


def test_docker_probe_fails_fast_without_a_daemon(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    started = time.monotonic()
    assert provide.docker_available() is False
    assert time.monotonic() - started < 1.0


def test_default_probe_is_quick() -> None:
    started = time.monotonic()
    provide.docker_available()  # True or False depending on the machine; never slow
    assert time.monotonic() - started < 1.0


async def test_embedded_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.setattr(provide, "docker_available", lambda: False)
    with provide.provide_postgres() as pg_url, provide.provide_redis() as redis_url:
        assert pg_url.startswith("postgresql://postgres@127.0.0.1:")
        conn = await asyncpg.connect(pg_url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        client = redis.Redis.from_url(redis_url)
        assert client.ping()
        client.close()
    assert not provide.redis_is_shared()
    assert any("embedded" in choice for choice in provide.choices)


def test_url_helpers() -> None:
    assert with_path("redis://h:1/0?x=1", "7") == "redis://h:1/7?x=1"
    assert plain_postgres_url("postgresql+asyncpg://u@h/db") == "postgresql://u@h/db"
    assert plain_postgres_url("postgres://u@h/db") == "postgresql://u@h/db"
    assert redact("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        plain_postgres_url("mysql://u@h/db")


def test_containers_asked_for_never_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TEST_REDIS_URL", raising=False)
    monkeypatch.setenv("TEST_SERVERS", "containers")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for provider in (provide.provide_postgres, provide.provide_redis):
        expected = r"no container engine answers at unix:///nonexistent"
        with pytest.raises(DevServerError, match=expected), provider():
            pytest.fail("must not yield a server")
    assert provide.choices == []


@pytest.mark.parametrize("mode", ["containers", "embedded"])
def test_an_explicit_mode_and_an_env_url_conflict(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("TEST_SERVERS", mode)
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://u:secret@db.invalid:5432/x")
    expected = f"TEST_SERVERS={mode} but TEST_DATABASE_URL"
    with pytest.raises(DevServerError, match=expected), provide.provide_postgres():
        pytest.fail("must not yield a server")


def test_an_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SERVERS", "docker")
    with pytest.raises(DevServerError, match="'docker' is not one of auto, containers, embedded"):
        provide.server_mode()


def test_embedded_mode_skips_the_engine_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("TEST_SERVERS", "embedded")
    monkeypatch.setattr(provide, "docker_available", lambda: pytest.fail("must not probe Docker"))
    assert provide._source("TEST_DATABASE_URL") == "embedded"
