"""Helpers for tests that start stacks: run the `roadmap` CLI, check what it leaves behind.

Used by this member's tests and the root end-to-end tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from roadmap_dev import state
from roadmap_dev.paths import find_repo_root


def alive(pid: int) -> bool:
    """A live process (zombies waiting for init to reap them count as gone)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_dead(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait for `pids` to be gone; return those still alive after `timeout`."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def kill_leftovers(pids: list[int]) -> None:
    """Fixture cleanup for processes a test started: SIGKILL any that survived."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


# Variables that would point the stack at other servers or a real LLM.
_STRIPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "JWT_SECRET_KEY",
    "ROADMAP_DATA_DIR",
    "APP_ENV",
)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED}
    env["COLUMNS"] = "120"
    env.update(extra)
    return env


@contextlib.contextmanager
def traversable_tmp() -> Iterator[Path]:
    """A temp folder others can enter: as root, the embedded Postgres runs as another user."""
    base = Path(tempfile.mkdtemp(prefix="roadmap-cli-test-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (e.g. the data dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and text in " ".join(proc.info["cmdline"] or []):
                found.append(proc.pid)
    return [pid for pid in found if alive(pid)]


class UpProcess:
    """`roadmap up` in the background; output in a file; stopped (and checked) by the caller."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.output_path = data_dir.parent / f"up-{time.monotonic_ns()}.out"
        self._output = self.output_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "roadmap_dev.cli", "up", "--data-dir", str(data_dir), *args],
            cwd=find_repo_root(),
            env=env or cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        self.seen: set[int] = set()

    @property
    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_running(self, timeout: float = 180.0) -> state.StackRecord:
        deadline = time.monotonic() + timeout
        while "Roadmap Agent is running" not in self.output:
            if self.proc.poll() is not None:
                raise AssertionError(f"roadmap up exited early:\n{self.output[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"roadmap up not running in {timeout}s:\n{self.output[-3000:]}"
                )
            time.sleep(0.2)
        record = state.read(self.data_dir / "stack.json")
        assert record is not None
        self.remember()
        return record

    def remember(self) -> None:
        """Note every process the CLI started so far (pool children and backends included)."""
        self.seen.update(descendants(self.proc.pid))

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 90.0) -> int:
        self.remember()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._output.close()

    def cleanup(self) -> None:
        """Fixture teardown: whatever still runs after a failed test is killed."""
        # Captured by pytest and shown only when the test failed.
        print(f"--- last output of roadmap up ({self.data_dir}) ---")
        print("\n".join(self.output.splitlines()[-80:]))
        if self.proc.poll() is None:
            self.remember()
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(60)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._output.close()
        leftovers = wait_dead(sorted(self.seen | set(processes_mentioning(str(self.data_dir)))), 5)
        kill_leftovers(leftovers)
