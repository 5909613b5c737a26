"""`.roadmap/stack.json`: which processes a running `roadmap up` started, for `roadmap down`.

A pid alone could name someone else's process after a reboot or pid reuse, so each
entry also keeps the kernel start time; `down` only signals processes matching both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, ValidationError

from roadmap_dev.stack import group_alive, same_process_alive, signal_group

RECORD_VERSION = 1


class ProcessRecord(BaseModel):
    name: str
    pid: int
    started_at: float | None
    stop_signal: int = int(signal.SIGTERM)

    def is_running(self) -> bool:
        """Alive, and the same process we recorded (not a later one with a reused pid)."""
        return same_process_alive(self.pid, self.started_at)


class StackRecord(BaseModel):
    version: int = RECORD_VERSION
    cli: ProcessRecord
    api_url: str | None = None
    children: list[ProcessRecord] = []
    servers: list[ProcessRecord] = []

    def processes(self) -> list[ProcessRecord]:
        return [*self.children, *self.servers]


def read(path: Path) -> StackRecord | None:
    try:
        return StackRecord.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None
    except ValidationError:
        return None  # unreadable: nothing we can safely signal


def write(path: Path, record: StackRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".stack-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(record.model_dump_json(indent=2))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def running_stack(path: Path) -> StackRecord | None:
    """The record of a stack whose CLI is still alive, if any."""
    record = read(path)
    if record is None or record.cli.pid == os.getpid() or not record.cli.is_running():
        return None
    return record


def _wait_gone(
    records: list[ProcessRecord], timeout: float, *, groups: bool = True
) -> list[ProcessRecord]:
    """Wait until each process (and, for group leaders, its whole group) is gone."""

    def alive(r: ProcessRecord) -> bool:
        return r.is_running() or (groups and group_alive(r.pid))

    deadline = time.monotonic() + timeout
    left = [r for r in records if alive(r)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [r for r in left if alive(r)]
    return left


def stop_recorded(path: Path, *, cli_timeout: float = 60.0, timeout: float = 10.0) -> list[str]:
    """Stop the stack recorded in `path`; return the names of the processes that were stopped.

    The CLI is asked first (SIGTERM) so it stops its children and servers in order; whatever
    recorded process outlives it gets its own stop signal, then SIGKILL to its group.
    """
    record = read(path)
    if record is None:
        return []
    stopped: list[str] = []
    if record.cli.pid != os.getpid() and record.cli.is_running():
        os.kill(record.cli.pid, signal.SIGTERM)
        _wait_gone([record.cli], cli_timeout, groups=False)
        stopped.append(f"roadmap CLI (pid {record.cli.pid})")
    # Re-read: the CLI rewrites the record as it starts and stops processes.
    latest = read(path) or record
    known = {(r.pid, r.started_at): r for r in [*record.processes(), *latest.processes()]}
    alive = [r for r in known.values() if r.is_running()]
    for proc in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, proc.stop_signal)
    for proc in _wait_gone(alive, timeout):
        signal_group(proc.pid, signal.SIGKILL)
    _wait_gone(alive, 5.0)
    stopped.extend(f"{proc.name} (pid {proc.pid})" for proc in alive)
    current = read(path)
    if current is None or current.cli == record.cli:
        path.unlink(missing_ok=True)
    return stopped
