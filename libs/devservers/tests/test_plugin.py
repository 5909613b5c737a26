from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis

from roadmap_devservers.embedded import EmbeddedPostgres, EmbeddedRedis
from roadmap_devservers.pgdb import temporary_database
from roadmap_devservers.redisdb import CLAIM_KEY, claimed_redis_db

EMPTY_SCHEMA = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
)

INNER_TEST = """
import asyncio, json, os
import asyncpg, redis

def test_inner(database_url, redis_url):
    async def inspect():
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval("SELECT current_database()"), await conn.fetchval(EMPTY)
        finally:
            await conn.close()
    name, relations = asyncio.run(inspect())
    client = redis.Redis.from_url(redis_url)
    try:
        keys = client.dbsize()
        client.set("left-behind", "1")
    finally:
        client.close()
    report = {"db": name, "relations": relations, "redis_url": redis_url, "keys": keys}
    with open(os.environ["INNER_REPORT"], "w") as out:
        json.dump(report, out)
"""


def _db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def _database_exists(server_url: str, name: str) -> bool:
    conn = await asyncpg.connect(server_url)
    try:
        found = await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return bool(found)


def _run_inner_session(tmp_path: Path, env: dict[str, str]) -> tuple[str, dict[str, object]]:
    (tmp_path / "test_inner.py").write_text(f"EMPTY = {EMPTY_SCHEMA!r}\n{INNER_TEST}")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**env, "INNER_REPORT": str(report)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "skip" not in result.stdout.lower()
    return result.stdout, json.loads(report.read_text())


def test_plugin_is_registered(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.has_plugin("roadmap_devservers")


async def test_database_url_is_a_private_database(database_url: str, pg_server_url: str) -> None:
    assert database_url.startswith("postgresql://")
    name = _db_name(database_url)
    assert name.startswith("roadmap_test_")
    assert name != _db_name(pg_server_url)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
    finally:
        await conn.close()


async def test_temporary_database_is_empty_and_dropped_despite_open_connections(
    pg_server_url: str,
) -> None:
    with temporary_database(pg_server_url) as url:
        conn = await asyncpg.connect(url)
        assert await conn.fetchval(EMPTY_SCHEMA) == 0
        # left open on purpose: the drop must terminate it
    assert not await _database_exists(pg_server_url, _db_name(url))
    conn.terminate()


async def test_abandoned_databases_are_swept(pg_server_url: str) -> None:
    prefix = "roadmap_sweeptest_"
    dead_pid = _dead_pid()
    host = os.uname().nodename
    comments = {
        f"{prefix}dead": {"host": host, "pid": dead_pid, "created": 1e10},
        f"{prefix}elsewhere": {"host": "other-host", "pid": 1, "created": 1e10},
        f"{prefix}ancient": {"host": "other-host", "pid": 1, "created": 0},
    }
    conn = await asyncpg.connect(pg_server_url)
    try:
        for name, comment in comments.items():
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(comment)}'")
        with temporary_database(pg_server_url, prefix=prefix):
            remaining = {
                row["datname"]
                for row in await conn.fetch(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
                )
            }
        assert f"{prefix}dead" not in remaining
        assert f"{prefix}ancient" not in remaining
        assert f"{prefix}elsewhere" in remaining
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{prefix}elsewhere"')
        await conn.close()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_redis_url_is_usable_and_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
    finally:
        client.close()


def test_shared_redis_claims_distinct_indexes(own_redis: EmbeddedRedis) -> None:
    server = own_redis.url
    seeded = redis.Redis.from_url(server.replace("/0", "/1"))
    seeded.set("stale", "1")  # a dead session's data: the next claimer flushes it
    seeded.close()
    claimed: list[str] = []
    inside = threading.Barrier(2)

    def claim() -> None:
        with claimed_redis_db(server) as url:
            claimed.append(url)
            client = redis.Redis.from_url(url)
            assert client.dbsize() == 0
            client.set("mine", "1")
            client.close()
            inside.wait(timeout=10)  # both hold a claim at the same time

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(int(urlsplit(url).path[1:]) for url in claimed) == [1, 2]
    admin = redis.Redis.from_url(server)
    try:
        assert admin.keys(CLAIM_KEY.format(index="*")) == []  # released
        for url in claimed:
            assert redis.Redis.from_url(url).dbsize() == 0  # flushed at the end
    finally:
        admin.close()


def test_inner_session_on_shared_servers(
    tmp_path: Path, pg_server_url: str, own_redis: EmbeddedRedis
) -> None:
    env = {**os.environ, "TEST_DATABASE_URL": pg_server_url, "TEST_REDIS_URL": own_redis.url}
    output, report = _run_inner_session(tmp_path, env)
    assert report["relations"] == 0
    assert report["keys"] == 0
    assert str(report["db"]).startswith("roadmap_test_")
    assert str(report["redis_url"]).endswith("/1")
    assert "Postgres: TEST_DATABASE_URL" in output
    assert not asyncio.run(_database_exists(pg_server_url, str(report["db"])))
    client = redis.Redis.from_url(str(report["redis_url"]))
    try:
        assert client.dbsize() == 0
    finally:
        client.close()


def test_inner_session_on_embedded_servers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"TEST_DATABASE_URL", "TEST_REDIS_URL"}}
    env["DOCKER_HOST"] = f"unix://{tmp_path / 'no-docker.sock'}"  # force the embedded branch
    output, report = _run_inner_session(tmp_path, env)
    assert report["relations"] == 0
    assert report["keys"] == 0
    assert str(report["redis_url"]).endswith("/0")
    assert "Postgres: embedded server" in output
    assert "Redis: embedded server" in output


async def test_own_postgres_can_restart(own_postgres: EmbeddedPostgres) -> None:
    url = own_postgres.url
    own_postgres.stop()
    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(url, timeout=2)
    assert own_postgres.start() == url
    assert own_postgres.restart() == url
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()


def test_own_redis_can_restart(own_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(own_redis.url)
    try:
        own_redis.stop()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        own_redis.start()
        assert client.ping()
        own_redis.restart(empty=True)
        assert client.ping()
    finally:
        client.close()
