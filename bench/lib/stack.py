"""The real system, started for one benchmark: fake LLM, API, content worker, logs worker.

Children write their output straight to a log file (no pipe through this process, which
also runs the load generator), run in their own session, die with us (PR_SET_PDEATHSIG),
and are stopped by `BenchStack.stop()`: the stop signal to the leader (Celery drains its
pool), then SIGKILL to the whole process group after a timeout. Leaving the `with` block,
an exception or Ctrl-C all go through `stop()`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
import psutil
import redis

from bench.lib.api import make_users
from bench.lib.budgets import budget_env
from bench.lib.infra import Fresh
from roadmap_client import ApiError, RoadmapClient
from roadmap_dev.fake_search import search_env
from roadmap_dev.stack import die_with_parent, group_alive, signal_group
from roadmap_devservers.pgdb import run_sync

REPO_ROOT = Path(__file__).resolve().parents[2]
# The API's launcher (roadmap_api.serve): uvicorn with the API's HTTP limits, as the image.
API_MODULE = "roadmap_api"
CONTENT_APP = "roadmap_worker_content.app:celery_app"
LOGS_APP = "roadmap_worker_logs.app:celery_app"
FAKE_LLM_MODULE = "roadmap_dev.fake_llm"
HEARTBEAT_PATTERN = "roadmap:heartbeat:{kind}:*"
BENCH_PASSWORD = "Bench-" + secrets.token_urlsafe(18)  # per run; never printed

# High enough that no per-user quota or global LLM limiter shapes a benchmark: we measure
# the system's own capacity, not a policy (a quota answers 429 in microseconds).
UNLIMITED = {
    "QUOTA_MAX_ACTIVE_JOBS": "1000000",
    "QUOTA_JOBS_PER_DAY": "1000000",
    "QUOTA_TOKENS_PER_DAY": "1000000000000",
    "REGISTER_IP_MAX": "100000",
    "LOGIN_IP_MAX_ATTEMPTS": "100000",
    "LLM_RPM": "1000000",
    "LLM_TPM": "1000000000",
}


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class StackConfig:
    fake_llm: bool = True
    fake_latency_ms: int = 200
    # A 24-concept roadmap (3 content items each), the size the generation bound is stated for.
    fake_args: Sequence[str] = ("--concepts", "24", "--seed", "1")
    api: bool = True
    api_workers: int = 2  # WEB_CONCURRENCY of the API's image
    content_worker: bool = True
    # Separate content-worker processes, as Railway replicas would be (each with its pool).
    content_workers: int = 1
    logs_worker: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 90.0


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    stop_signal: signal.Signals = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class StackError(RuntimeError):
    pass


class BenchStack:
    """Starts the configured services on `fresh` in `start()`; `stop()` stops them all.

    Workers are killed outright (their whole process group): a benchmark's stack is thrown
    away with its database and Redis db, and a graceful Celery shutdown would wait for
    running tasks (`SOFT_SHUTDOWN_TIMEOUT_S`) on every stop.
    """

    def __init__(self, fresh: Fresh, config: StackConfig, log_dir: Path) -> None:
        self.fresh = fresh
        self.config = config
        self.log_dir = log_dir
        self.procs: dict[str, Proc] = {}
        self.api_url = ""
        self.llm_base_url = ""
        self.env = self._base_env()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL", "REDIS_URL"):
            env.pop(name, None)
        env.update(
            DATABASE_URL=self.fresh.database_url,
            REDIS_URL=self.fresh.redis_url,
            APP_ENV="development",
            LOG_JSON="true",
            JWT_SECRET_KEY=secrets.token_urlsafe(48),
            PYTHONUNBUFFERED="1",
        )
        env.update(UNLIMITED)
        env.update(budget_env())
        env.update(self.config.env)
        return env

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        if cfg.fake_llm:
            self._start_fake_llm()
        for name in self.content_names():
            self.spawn(
                name,
                [sys.executable, "-m", "celery", "-A", CONTENT_APP, "worker",
                 "-Q", "content_generation", "--pool", "prefork",
                 "--concurrency", self.env["WORKER_CONCURRENCY"],
                 "--max-tasks-per-child", self.env.get("WORKER_MAX_TASKS_PER_CHILD", "200"),
                 "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
                 "-n", f"content-{secrets.token_hex(3)}@%h"],
                stop_signal=signal.SIGKILL,
            )  # fmt: skip
        if cfg.logs_worker:
            self.spawn(
                "worker-logs",
                [sys.executable, "-m", "celery", "-A", LOGS_APP, "worker", "-Q", "logs",
                 "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
                 "-n", f"logs-{secrets.token_hex(3)}@%h"],
                stop_signal=signal.SIGKILL,
            )  # fmt: skip
        if cfg.api:
            port = free_port()
            self.api_url = f"http://127.0.0.1:{port}"
            self.spawn(
                "api",
                [sys.executable, "-m", API_MODULE, "--host", "127.0.0.1",
                 "--port", str(port), "--workers", str(cfg.api_workers),
                 "--timeout-graceful-shutdown", "5"],
            )  # fmt: skip
            self.wait_for("api", lambda: http_ok(f"{self.api_url}/healthz"), "answering /healthz")
        if cfg.content_worker:
            wanted = len(self.content_names())
            self.wait_for(
                self.content_names()[-1],
                lambda: self._heartbeats("worker-content") >= wanted,
                f"beating ({wanted} worker processes)",
            )
        if cfg.logs_worker:
            self.wait_for("worker-logs", lambda: self._heartbeats("worker-logs") >= 1, "beating")

    def _start_fake_llm(self) -> None:
        port = free_port()
        self.llm_base_url = f"http://127.0.0.1:{port}/v1"
        self.spawn(
            "fake-llm",
            [sys.executable, "-m", FAKE_LLM_MODULE, "--host", "127.0.0.1", "--port", str(port),
             "--latency-ms", str(self.config.fake_latency_ms), *self.config.fake_args],
        )  # fmt: skip
        self.env["OPENAI_BASE_URL"] = self.llm_base_url
        self.env.update(search_env(self.llm_base_url))
        self.env["OPENAI_API_KEY"] = "bench-fake-llm"  # the SDK wants one; the fake ignores it
        self.wait_for("fake-llm", lambda: http_ok(f"{self.llm_base_url}/models"), "serving")

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env if env is not None else self.env),
                cwd=REPO_ROOT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        except BaseException:
            log.close()
            raise
        proc = Proc(name, popen, log_path, log, stop_signal)
        self.procs[name] = proc
        return proc

    def wait_for(self, name: str, ready: Callable[[], bool], what: str) -> None:
        proc = self.procs[name]
        deadline = time.monotonic() + self.config.ready_timeout_s
        while not ready():
            if not proc.alive():
                raise StackError(
                    f"{name} exited with {proc.popen.returncode} during startup:\n{proc.tail()}"
                )
            if time.monotonic() > deadline:
                raise StackError(f"{name} was not {what} within the timeout:\n{proc.tail()}")
            time.sleep(0.1)

    def content_names(self) -> list[str]:
        """The process names of the content workers: ``worker-content``, then ``-2``…"""
        cfg = self.config
        if not cfg.content_worker:
            return []
        return ["worker-content"] + [
            f"worker-content-{i}" for i in range(2, cfg.content_workers + 1)
        ]

    def _heartbeats(self, kind: str) -> int:
        """Instances of a worker type beating now (``roadmap:heartbeat:<type>:<instance>``)."""
        client = redis.Redis.from_url(self.fresh.redis_url, socket_timeout=2)
        try:
            return sum(1 for _ in client.scan_iter(HEARTBEAT_PATTERN.format(kind=kind)))
        except redis.RedisError:
            return 0
        finally:
            client.close()

    def check_alive(self) -> None:
        """Raise if a service died while a benchmark was running (its figures would be void)."""
        for proc in self.procs.values():
            if not proc.alive():
                raise StackError(
                    f"{proc.name} exited with {proc.popen.returncode} during the benchmark:\n"
                    f"{proc.tail()}"
                )

    # -- stop ------------------------------------------------------------------------------

    def stop(self, timeout: float = 15.0) -> None:
        procs = list(self.procs.values())
        self.procs.clear()
        _stop_procs(procs, timeout)

    def stop_one(self, name: str, timeout: float = 15.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            _stop_procs([proc], timeout)

    # -- what benchmarks need ----------------------------------------------------------------

    def pids(self, name: str) -> list[int]:
        """The service's processes: the leader and all its descendants (workers, pool children)."""
        proc = self.procs.get(name)
        if proc is None or not proc.alive():
            return []
        try:
            leader = psutil.Process(proc.pid)
            return [leader.pid, *(c.pid for c in leader.children(recursive=True))]
        except psutil.Error:
            return []

    def services(self) -> list[str]:
        return [name for name in self.procs if name != "fake-llm"]

    def user_tokens(self, count: int) -> list[str]:
        """Tokens of `count` new users (see bench.lib.api.make_users)."""

        return run_sync(make_users(self.fresh.database_url, self.env["JWT_SECRET_KEY"], count))

    def user_token(self, email: str | None = None) -> str:
        """Register a user and return a bearer token for it."""
        email = email or f"bench-{secrets.token_hex(4)}@example.com"
        with RoadmapClient(self.api_url, timeout=30) as client:
            try:
                client.register(email, BENCH_PASSWORD, display_name="bench")
            except ApiError as exc:
                if exc.status != 409:
                    raise
            return client.login(email, BENCH_PASSWORD).access_token


def _stop_procs(procs: list[Proc], timeout: float) -> None:
    """The stop signal to each leader (SIGKILL: to its whole group), then SIGKILL to any group
    still alive at the timeout."""
    for proc in procs:
        if proc.stop_signal is signal.SIGKILL:
            signal_group(proc.pid, signal.SIGKILL)
        elif proc.alive():
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(proc.stop_signal)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.alive() or group_alive(p.pid) for p in procs):
        time.sleep(0.05)
    for proc in procs:
        if proc.alive() or group_alive(proc.pid):
            signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=5)
        proc.log.close()


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
