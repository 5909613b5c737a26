"""Real service processes for the root tests, each stopped by pid (also when a test fails).

Every process gets a session of its own (its pid is its process group id), dies with the
pytest process (PR_SET_PDEATHSIG) and writes stdout+stderr to a file in the capture dir.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import psutil
from redis import Redis as SyncRedis

from roadmap_core.contracts import CHAT_QUEUE, CONTENT_QUEUE, LOGS_QUEUE
from roadmap_core.heartbeat import WorkerType, heartbeat_key
from roadmap_dev.stack import die_with_parent

STOP_TIMEOUT_S = 20.0
_serial = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


class ManagedProcess:
    """One started process. ``stop()`` is idempotent and never raises for a dead process."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{next(_serial):03d}-{name}.log"
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        self.pid = self.proc.pid
        # Every process this one ever had: stop() makes sure none outlives the test.
        self._seen: set[int] = set()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def descendants(self) -> list[int]:
        try:
            pids = [p.pid for p in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self._seen.update(pids)
        return pids

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def send(self, sig: signal.Signals) -> None:
        self.descendants()
        if self.running:
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL this process and everything it started (no chance to clean up)."""
        pids = self.descendants()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, wait, then SIGKILL what is left (the process and its descendants)."""
        self.descendants()
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT_S)
        for pid in sorted(self._seen):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    os.kill(pid, signal.SIGKILL)


class ApiProcess(ManagedProcess):
    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        port: int | None = None,
        *,
        uvicorn_access_log: bool = False,
        workers: int = 1,
    ) -> None:
        """``uvicorn_access_log``: also uvicorn's own access line (raw path and query), as
        ``roadmap up`` runs it; by default only the app's (route templates). ``workers``:
        uvicorn's ``--workers`` (the images run 2)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            # The API's launcher, as the images run it (HTTP limits included).
            sys.executable, "-m", "roadmap_api",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--timeout-graceful-shutdown", "5",
        ]  # fmt: skip
        if workers > 1:
            argv += ["--workers", str(workers)]
        if not uvicorn_access_log:
            argv.append("--no-access-log")
        super().__init__("api", argv, env, log_dir)

    def wait_ready(self, timeout: float = 60.0) -> None:
        def up() -> bool:
            if not self.running:
                raise AssertionError(f"API exited early:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout, f"the API on port {self.port}\n{self.log()}", poll=0.1)


class WorkerProcess(ManagedProcess):
    """A Celery worker (prefork); ``children()`` are its pool processes right now."""

    def __init__(
        self,
        name: str,
        app: str,
        queue: str,
        env: Mapping[str, str],
        log_dir: Path,
        concurrency: int,
    ) -> None:
        self.concurrency = concurrency
        self.redis_url = env["REDIS_URL"]
        argv = [
            sys.executable, "-m", "celery", "-A", app, "worker",
            "--pool", "prefork", "-c", str(concurrency), "-Q", queue,
            "-n", f"{name}-{next(_serial)}@%h", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        super().__init__(name, argv, env, log_dir)

    def children(self) -> list[int]:
        try:
            pids = [p.pid for p in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []
        self._seen.update(pids)
        return pids

    def _children_up(self) -> bool:
        if not self.running:
            raise AssertionError(f"{self.name} exited early:\n{self.log()}")
        return len(self.children()) >= self.concurrency


class ContentWorkerProcess(WorkerProcess):
    def __init__(self, env: Mapping[str, str], log_dir: Path, concurrency: int = 2) -> None:
        super().__init__(
            "worker-content",
            "roadmap_worker_content.app:celery_app",
            CONTENT_QUEUE,
            env,
            log_dir,
            concurrency,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the main process beats (after worker_ready) and the pool is complete."""
        key = heartbeat_key(WorkerType.content, f"{socket.gethostname()}:{self.pid}")
        client = SyncRedis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            wait_until(
                lambda: self._children_up() and client.exists(key),
                timeout,
                f"the content worker (pid {self.pid})\n{self.log()}",
            )
        finally:
            client.close()


class ChatWorkerProcess(ContentWorkerProcess):
    """The content worker's code consuming only the mentor chat's queue (its own process)."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, concurrency: int = 2) -> None:
        WorkerProcess.__init__(
            self,
            "worker-chat",
            "roadmap_worker_content.app:celery_app",
            CHAT_QUEUE,
            env,
            log_dir,
            concurrency,
        )


class LogsWorkerProcess(WorkerProcess):
    def __init__(self, env: Mapping[str, str], log_dir: Path, concurrency: int = 1) -> None:
        super().__init__(
            "worker-logs",
            "roadmap_worker_logs.app:celery_app",
            LOGS_QUEUE,
            env,
            log_dir,
            concurrency,
        )

    def beating_children(self) -> list[int]:
        """Pool processes that built their runtime (each beats under its own pid)."""
        client = SyncRedis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            found = []
            for raw in client.scan_iter(match=heartbeat_key(WorkerType.logs, "*")):
                value = client.get(raw)
                if value is None:
                    continue
                pid = int(json.loads(value).get("pid", -1))
                if pid in self.children():
                    found.append(pid)
            return found
        finally:
            client.close()

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_until(
            lambda: self._children_up() and len(self.beating_children()) >= self.concurrency,
            timeout,
            f"the logs worker (pid {self.pid})\n{self.log()}",
        )
