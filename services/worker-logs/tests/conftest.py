"""Fixtures: a migrated session database, a clean state per test, and a RUNNING logs worker
(`celery -A roadmap_worker_logs.app:celery_app worker -Q logs`) in a subprocess of its own
session, stopped by pid (or its process group) on teardown, also on failure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from celery import Celery
from redis import Redis

from roadmap_core.celery_app import create_celery_app
from roadmap_core.heartbeat import WorkerType, heartbeat_key
from roadmap_core.settings import RedisSettings, plain_postgres_url
from roadmap_db.engine import ProcessDatabase
from roadmap_db.testing import migrate_to_head, settings_for, truncate_all

EMITTER = Path(__file__).with_name("emitter.py")
STOP_TIMEOUT_S = 20.0


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


class LogsWorker:
    """One `celery worker -Q logs` subprocess."""

    def __init__(
        self, database_url: str, redis_url: str, *, concurrency: int, env: dict[str, str]
    ) -> None:
        self.redis_url = redis_url
        self.concurrency = concurrency
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "LOGS_"))},
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "APP_ENV": "test",
            "LOG_LEVEL": "INFO",
            "LOGS_HEARTBEAT_INTERVAL_S": "0.2",
            "LOGS_RETENTION_INTERVAL_S": "0",
            **env,
        }
        self.log_file = Path(tempfile.mkstemp(prefix="roadmap-logs-worker-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LogsWorker:
        argv = [
            sys.executable, "-m", "celery", "-A", "roadmap_worker_logs.app:celery_app",
            "worker", "-Q", "logs", "-c", str(self.concurrency), "--loglevel", "INFO",
            "-n", f"logs-test-{uuid.uuid4().hex[:8]}@%h",
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(
            lambda: len(self.children()) == self.concurrency,
            what=f"{self.concurrency} logs worker processes to report a heartbeat\n{self.log()}",
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def heartbeats(self) -> dict[int, dict[str, Any]]:
        """Live pool children of this worker → the info each last reported."""
        client = Redis.from_url(self.redis_url)
        try:
            found = {}
            for key in client.scan_iter(match=heartbeat_key(WorkerType.logs, "*")):
                raw = client.get(key)
                if raw is None:
                    continue
                info = json.loads(raw)
                if _parent_of(info["pid"]) == self.pid:
                    found[info["pid"]] = info
            return found
        finally:
            client.close()

    def children(self) -> list[int]:
        return sorted(self.heartbeats()) if self.running else []

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-6000:]

    def kill_all(self) -> None:
        """SIGKILL the worker and its pool children (its own process group)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT_S)
        self.kill_all()  # stragglers of its group, if any
        self.proc = None


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await migrate_to_head(database_url)
    return database_url


@pytest.fixture
async def clean(migrated_url: str, redis_url: str) -> str:
    await truncate_all(migrated_url)
    client = Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return migrated_url


@pytest.fixture
async def db(clean: str) -> AsyncIterator[ProcessDatabase]:
    database = ProcessDatabase(settings_for(clean), "roadmap-worker-logs-tests")
    yield database
    await database.dispose()


@pytest.fixture
async def pg(clean: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_postgres_url(clean))
    yield conn
    await conn.close()


@pytest.fixture
def producer(redis_url: str) -> Celery:
    return create_celery_app("logs-tests-producer", RedisSettings(redis_url=redis_url))


@pytest.fixture
def start_worker(migrated_url: str, redis_url: str) -> Iterator[Callable[..., LogsWorker]]:
    started: list[LogsWorker] = []

    def start(
        *, concurrency: int = 2, redis: str | None = None, env: dict[str, str] | None = None
    ) -> LogsWorker:
        worker = LogsWorker(
            migrated_url, redis or redis_url, concurrency=concurrency, env=env or {}
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
        worker.log_file.unlink(missing_ok=True)


@pytest.fixture
def run_emitter() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def run(
        redis_url: str, jobs: dict[uuid.UUID, int], *, pause: bool = False
    ) -> subprocess.Popen[str]:
        argv = [sys.executable, str(EMITTER), redis_url, *(f"{j}:{n}" for j, n in jobs.items())]
        if pause:
            argv.append("--pause")
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
