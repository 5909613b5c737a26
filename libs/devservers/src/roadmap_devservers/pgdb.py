"""A private, uniquely named database per test session, so sessions can share one server.

Each database carries a comment naming its creator (host, pid, time). Sessions that were
killed before cleanup leave databases behind; the next session on the same server drops
those whose creator is gone (same host, dead pid) or that are older than a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg

from roadmap_devservers.urls import plain_postgres_url, with_path

log = logging.getLogger(__name__)

PREFIX = "roadmap_test_"
STALE_AFTER_SECONDS = 24 * 3600

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, on its own loop in a helper thread.

    A separate thread keeps us clear of whatever loop the caller's thread may have
    (pytest-asyncio's session loop, or a running one).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devservers") as pool:
        return pool.submit(asyncio.run, coro).result()


@contextlib.contextmanager
def temporary_database(server_url: str, prefix: str = PREFIX) -> Iterator[str]:
    """Create an empty database on `server_url`, yield its `postgresql://` URL, then drop it."""
    admin_url = plain_postgres_url(server_url)
    name = prefix + secrets.token_hex(6)
    run_sync(_create(admin_url, name, prefix))
    try:
        yield with_path(admin_url, name)
    finally:
        run_sync(_drop(admin_url, name))


def _owner_comment() -> str:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "created": time.time()})


def _is_abandoned(comment: str | None) -> bool:
    try:
        owner = json.loads(comment or "")
        host, pid, created = str(owner["host"]), int(owner["pid"]), float(owner["created"])
    except (ValueError, KeyError, TypeError):
        return False  # not ours to judge
    if time.time() - created > STALE_AFTER_SECONDS:
        return True
    return host == socket.gethostname() and not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _create(admin_url: str, name: str, prefix: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        await _drop_abandoned(conn, prefix)
        # template0: CREATE DATABASE from template1 fails while anyone is connected to it.
        await conn.execute(f"CREATE DATABASE {_ident(name)} TEMPLATE template0")
        await conn.execute(f"COMMENT ON DATABASE {_ident(name)} IS {_literal(_owner_comment())}")
    finally:
        await conn.close()
    log.info("created test database %s", name)


async def _drop_abandoned(conn: asyncpg.Connection, prefix: str) -> None:
    rows = await conn.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database "
        "WHERE starts_with(datname, $1)",
        prefix,
    )
    for row in rows:
        if _is_abandoned(row["comment"]):
            log.info("dropping abandoned test database %s", row["datname"])
            await _drop_with(conn, row["datname"])


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        await _drop_with(conn, name)
    finally:
        await conn.close()
    log.info("dropped test database %s", name)


async def _drop_with(conn: asyncpg.Connection, name: str) -> None:
    # Leftover pools (a test that forgot to dispose its engine) must not block the drop.
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    )
    force = " WITH (FORCE)" if conn.get_server_version().major >= 13 else ""
    await conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)}{force}")
