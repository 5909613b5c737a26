"""One metrics directory per service instance, shared by all of its processes.

``prometheus_client`` keeps a process's samples in memory unless
``PROMETHEUS_MULTIPROC_DIR`` names a directory; then every process writes its samples to
files there and a scrape sums the files of all of them (its "multiprocess mode"). The
library picks its storage when it is imported, so :func:`enable` sets the variable and
has the library pick again (``values.get_value_class``); every metric created afterwards
writes to the directory. Create metrics after :func:`enable`, never at import.

Which directory: ``PROMETHEUS_MULTIPROC_DIR`` when the launcher sets it; otherwise one
of our own under the temp folder, named after the process that owns the service
instance, so that its processes find the same one without being told:

* a Celery worker's main process calls :func:`enable` before its pool forks; the
  children inherit the variable and the library's choice;
* uvicorn's ``--workers`` supervisor never imports the app; each worker is started by
  ``multiprocessing`` and calls :func:`enable` itself, naming the directory after its
  parent (the supervisor), which it shares with its siblings and their replacements.

A directory is named ``<service>-<pid>-<start time>``; one whose process is gone is
deleted by the next :func:`enable` of that service, so the temp folder does not fill up
and a reused pid never inherits old counters.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, multiprocess, values

ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# Where this process's metrics register: what a scrape shows when multiprocess mode is off
# (an in-process test app), and ignored in favour of the directory when it is on.
LOCAL = CollectorRegistry(auto_describe=True)

_enabled: Path | None = None
_owned: bool = False


def root() -> Path:
    return Path(tempfile.gettempdir()) / f"roadmap-metrics-{os.getuid()}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "0" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    # The command name (2nd field) may hold spaces; fields after it are space separated.
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _start_time(pid) == start


def _owner() -> int:
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def _sweep(service: str) -> None:
    base = root()
    for path in base.glob(f"{service}-*-*"):
        pid, _, start = path.name.removeprefix(f"{service}-").partition("-")
        if pid.isdigit() and not _alive(int(pid), start):
            shutil.rmtree(path, ignore_errors=True)


def enable(service: str) -> Path:
    """Switch this process to multiprocess metrics (idempotent); returns the directory."""
    global _enabled, _owned
    if _enabled is not None and os.environ.get(ENV) == str(_enabled):
        return _enabled
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        owned = False
    else:
        base = root()
        base.mkdir(mode=0o700, exist_ok=True)
        _sweep(service)
        owner = _owner()
        path = base / f"{service}-{owner}-{_start_time(owner)}"
        path.mkdir(exist_ok=True)
        owned = owner == os.getpid()
        os.environ[ENV] = str(path)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    _enabled, _owned = path, owned
    return path


def enabled() -> Path | None:
    """The directory when this process records multiprocess metrics, else None."""
    return _enabled if _enabled is not None and os.environ.get(ENV) == str(_enabled) else None


def collecting_registry(fallback: CollectorRegistry) -> CollectorRegistry:
    """What a scrape renders: the samples of every process of the service (multiprocess
    mode), or ``fallback``, this process's own registry."""
    path = enabled()
    if path is None:
        return fallback
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
    return registry


def process_exited(pid: int | None = None) -> None:
    """Drop the live gauges of ``pid`` (this process by default) from the sums."""
    path = enabled()
    if path is not None:
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid() if pid is None else pid, str(path)
            )


def release() -> None:
    """The owner of the directory, stopping, deletes it (its processes are gone)."""
    global _owned
    path = enabled()
    if path is not None and _owned:
        shutil.rmtree(path, ignore_errors=True)
    _owned = False
