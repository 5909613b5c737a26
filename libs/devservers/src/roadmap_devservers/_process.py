"""Process plumbing for the embedded servers: which user runs them, and tying their life to ours."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from roadmap_devservers.errors import (
    DataDirNotAccessibleError,
    DevServerError,
    PortInUseError,
    ServerStartError,
)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

T = TypeVar("T")


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a server as (PostgreSQL refuses to run as root)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def unprivileged_user(preferred: str = "postgres") -> RunAs | None:
    """The account servers run as when we are root; None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        groups = tuple(os.getgrouplist(name, entry.pw_gid))
        return RunAs(name, entry.pw_uid, entry.pw_gid, groups)
    raise DevServerError(
        f"running as root but neither a {preferred!r} nor a 'nobody' user exists; "
        "create one or run as a normal user"
    )


def blocked_at(path: Path, user: RunAs) -> Path | None:
    """The first folder on the way to ``path`` that ``user`` cannot enter, or None.

    ACLs are ignored: plain mode bits decide, which matches the common case.
    """
    for current in reversed([path, *path.parents]):
        try:
            st = current.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in user.groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return current
    return None


def check_traversable(path: Path, user: RunAs) -> None:
    """Fail clearly if `user` cannot reach `path`.

    We never widen permissions of directories we did not create: callers keep what the
    user must reach under `shared_dir()` instead (see `EmbeddedPostgres`).
    """
    blocked = blocked_at(path, user)
    if blocked is not None:
        raise DataDirNotAccessibleError(
            f"user {user.name!r} (which runs the embedded server because we run as root) "
            f"cannot enter {blocked} (mode {stat.S_IMODE(blocked.stat().st_mode):o}); put the "
            "data dir under a directory others can traverse (e.g. /tmp)"
        )


# As root, files the unprivileged server user must reach (a copy of the PostgreSQL
# binaries, a data folder) go here when the folder the caller chose is closed to that user
# (a checkout under /root, or in a fresh `mktemp -d`). /var/tmp survives reboots, so a dev
# stack keeps its data; the folder is root's, and others may only pass through it.
SHARED_DIR_NAME = "roadmap-devservers"
SHARED_DIR_MODE = 0o711
# Left in a data folder whose server files live under shared_dir(): a symlink to them.
# It records who owns them: `remove_data_dir` deletes both, and files no link points to
# are stale (their data folder was deleted by hand) and are not reused.
RELOCATED_LINK = "relocated"


def shared_dir() -> Path:
    """Root's folder for what the server user must reach; created on first use."""
    base = Path("/var/tmp")  # noqa: S108 - checked below: ours alone, not writable by others
    if not base.is_dir():
        base = Path(tempfile.gettempdir())
    shared = base / SHARED_DIR_NAME
    with contextlib.suppress(FileExistsError):
        shared.mkdir(mode=SHARED_DIR_MODE)
    st = shared.lstat()
    # Someone else's folder (or a symlink planted in a sticky /var/tmp) must not hold
    # what the server executes or writes.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise DataDirNotAccessibleError(
            f"{shared} is not a folder only this user can write to; remove it (it only holds "
            "copies of the embedded PostgreSQL and its data) and try again"
        )
    return shared


def copy_trees_once(sources: dict[str, Path], target: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Copy each ``sources[name]`` to ``target/name`` unless ``target`` exists.

    Hard links where the filesystem allows (no space, no time), else copies; built beside
    ``target`` and renamed into place, so a half-made copy is never used, and concurrent
    callers are safe.
    """
    if target.is_dir():
        return

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tree = scratch / "tree"
        for name, source in sources.items():
            shutil.copytree(
                source,
                tree / name,
                symlinks=True,
                ignore=shutil.ignore_patterns(*skip),
                copy_function=link_or_copy,
            )
        for folder in (tree, *(tree / name for name in sources)):
            for parent in [folder, *folder.relative_to(tree).parents]:
                (tree / parent).chmod(0o755)
        with contextlib.suppress(OSError):
            os.rename(tree, target)  # lost a race: the other copy is as good
    finally:
        remove_tree(scratch)
    if not target.is_dir():
        raise DevServerError(f"could not copy {', '.join(map(str, sources.values()))} to {target}")


def remove_relocated(data_dir: Path) -> None:
    """Delete the server files kept under shared_dir() for data folders inside ``data_dir``."""
    if not data_dir.is_dir():
        return
    for folder, dirs, files in os.walk(data_dir):
        for name in (*dirs, *files):
            link = Path(folder) / name
            if name != RELOCATED_LINK or not link.is_symlink():
                continue
            target = Path(os.readlink(link))
            # Only what we put there: a link edited to point elsewhere deletes nothing.
            if target.parent.name == SHARED_DIR_NAME and target.name.startswith("postgres-data-"):
                remove_tree(target)


@contextlib.contextmanager
def private_temp_dir(prefix: str) -> Iterator[Path]:
    """A fresh temp dir, usable by the unprivileged server user, removed afterwards.

    mkdtemp makes it 0700 and root-owned; we hand this one dir (never a parent) to the user.
    """
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as name:
        path = Path(name)
        user = unprivileged_user()
        if user is not None:
            os.chown(path, user.uid, user.gid)
        try:
            yield path
        finally:
            remove_relocated(path)  # when the temp dir was closed to the server user


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the caller retries if someone takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved once, before any fork: the child must not load libraries between fork and exec.
_PRCTL = _load_prctl()


def _die_with_parent(death_signal: signal.Signals) -> Callable[[], None] | None:
    """preexec_fn asking the kernel to signal the child when we die, even by SIGKILL.

    CPython calls preexec_fn after switching uid/gid, which matters: a credential change
    clears the parent-death signal. The kernel fires it when the *thread* that forked the
    child exits, hence `_on_spawner_thread`.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()
    signum = int(death_signal)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl: nobody will signal
            os._exit(1)

    return preexec


def _child_env() -> dict[str, str]:
    # A small environment: PG*/REDIS* variables of the caller must not change the server.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


# The kernel sends the parent-death signal when the *thread* that forked the child exits, not
# the process. A server started from a short-lived thread (asyncio.to_thread, an executor)
# would die with that thread, so every server is forked from one daemon thread that lives
# until the process itself ends (re-created after a fork).
_spawner: tuple[int, queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]] | None = None
_spawner_lock = threading.Lock()


def _serve(jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]) -> None:
    while True:
        job, future = jobs.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)


def _on_spawner_thread(job: Callable[[], T]) -> T:
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():
            jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
            thread = threading.Thread(target=_serve, args=(jobs,), name="devservers-spawner")
            thread.daemon = True
            thread.start()
            _spawner = (os.getpid(), jobs)
        jobs = _spawner[1]
    future: Future[T] = Future()
    jobs.put((job, future))
    return future.result()


def spawn(
    argv: Sequence[str],
    *,
    run_as: RunAs | None,
    death_signal: signal.Signals,
    cwd: Path,
    log: IO[bytes],
) -> subprocess.Popen[bytes]:
    """Start a long-running server that dies with this process (see `_spawner`)."""
    return _on_spawner_thread(
        lambda: _popen(argv, run_as=run_as, death_signal=death_signal, cwd=cwd, log=log)
    )


def _popen(
    argv: Sequence[str],
    *,
    run_as: RunAs | None,
    death_signal: signal.Signals,
    cwd: Path,
    log: IO[bytes],
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - argv is built from our own binary paths
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=_child_env(),
        # Own session: a Ctrl-C in the terminal reaches us, and we stop servers in order.
        start_new_session=True,
        preexec_fn=_die_with_parent(death_signal),  # the only hook for PR_SET_PDEATHSIG
        user=run_as.uid if run_as else None,
        group=run_as.gid if run_as else None,
        extra_groups=list(run_as.groups) if run_as else None,
    )


def run_tool(argv: Sequence[str], *, run_as: RunAs | None, cwd: Path, timeout: float) -> None:
    """Run a short-lived helper (initdb); raise ServerStartError with its last line on failure."""
    try:
        result = subprocess.run(  # noqa: S603 - argv is built from our own binary paths
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=cwd,
            env=_child_env(),
            timeout=timeout,
            check=False,
            preexec_fn=_die_with_parent(signal.SIGKILL),
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=list(run_as.groups) if run_as else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(
            f"{Path(argv[0]).name} did not finish within {timeout:.0f}s"
        ) from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
        last = output[-1] if output else "(no output)"
        raise ServerStartError(
            f"{Path(argv[0]).name} failed with exit code {result.returncode}: {last}"
        )


def last_error_line(log_path: Path) -> str:
    """The most telling line of a server log, for one-line error messages."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    for line in reversed(lines):
        if any(marker in line for marker in ("FATAL", "PANIC", "ERROR", "# ", "Address already")):
            return line.strip()
    return lines[-1].strip() if lines else "(empty log)"


def _mentions_port_in_use(log_path: Path) -> bool:
    try:
        return "Address already in use" in log_path.read_text(errors="replace")
    except OSError:
        return False


def wait_ready(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    name: str,
    timeout: float,
    log_path: Path,
) -> None:
    """Poll `ready` until true; raise a one-line error if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        code = proc.poll()
        if code is not None:
            line = last_error_line(log_path)
            error = PortInUseError if _mentions_port_in_use(log_path) else ServerStartError
            raise error(f"{name} exited with code {code} during startup: {line} (log: {log_path})")
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{name} was not ready within {timeout:.0f}s: {last_error_line(log_path)} "
                f"(log: {log_path})"
            )
        time.sleep(0.02)


def terminate(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Send `sig`, wait, and escalate to SIGKILL if the server ignores it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class _Stoppable(Protocol):
    def stop(self) -> None: ...


# Servers started by this process, stopped at interpreter exit. Keyed by id() with the pid
# that started them: a forked child (a prefork worker) inherits this dict and atexit hook,
# and must not stop its parent's servers when it exits.
_running: dict[int, tuple[int, _Stoppable]] = {}
_running_lock = threading.Lock()


def track(server: _Stoppable) -> None:
    with _running_lock:
        _running[id(server)] = (os.getpid(), server)


def untrack(server: _Stoppable) -> None:
    with _running_lock:
        _running.pop(id(server), None)


def _stop_all() -> None:
    with _running_lock:
        mine = [server for pid, server in _running.values() if pid == os.getpid()]
    for server in mine:
        with contextlib.suppress(Exception):  # best effort at exit; PDEATHSIG is the backstop
            server.stop()


atexit.register(_stop_all)
