"""A test stack: the API, both workers and the fake LLM as real processes, on given servers.

Settings reach the services the way production sets them: environment variables read by
each service's settings module. ``FAST_SETTINGS`` makes the failure paths quick (short
leases, a reconciler every second, small roadmaps); a test passes its own overrides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from roadmap_client import RoadmapClient
from roadmap_dev.fake_llm import FakeConfig, FakeLLM
from roadmap_dev.fake_search import search_env
from roadmap_dev.stack import die_with_parent
from tests.support.capture import Capture, RecordingTransport
from tests.support.processes import (
    ApiProcess,
    ChatWorkerProcess,
    ContentWorkerProcess,
    LogsWorkerProcess,
    ManagedProcess,
    free_port,
    wait_until,
)
from tests.support.sentinels import SessionSecrets, new_password

# Inherited from the pytest process; everything else a service reads is set explicitly.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER", "VIRTUAL_ENV")

FAST_SETTINGS: dict[str, str] = {
    "APP_ENV": "test",
    "LOG_LEVEL": "INFO",
    "LOG_JSON": "true",
    "PYTHONUNBUFFERED": "1",
    # SIGTERM starts Celery's soft shutdown (what the worker's own entry point sets).
    "REMAP_SIGTERM": "SIGQUIT",
    "ITEM_LEASE_S": "3",
    "RECONCILE_INTERVAL_S": "1",
    "STALE_AGE_S": "2",
    "SOFT_SHUTDOWN_TIMEOUT_S": "3",
    "LLM_TIMEOUT_S": "10",
    "LLM_SDK_MAX_RETRIES": "1",
    "LLM_TASK_MAX_ATTEMPTS": "3",
    "LLM_MAX_RETRY_AFTER_S": "5",
    "LLM_RPM": "100000",
    "LLM_TPM": "100000000",
    "MAX_CONCEPTS": "3",
    "CONCEPT_BATCH_SIZE": "1",
    "LOG_FLUSH_INTERVAL_MS": "100",
    "LOGS_HEARTBEAT_INTERVAL_S": "0.5",
    "LOGS_RETENTION_INTERVAL_S": "0",
    "ENQUEUE_TIMEOUT_S": "1",
    # Redelivery by visibility timeout must never be what saves a test: keep it long.
    "BROKER_VISIBILITY_TIMEOUT_S": "3600",
}


def small_request(**overrides: Any) -> dict[str, Any]:
    """A roadmap small enough to finish in seconds (MAX_CONCEPTS caps it further).

    Each gets a goal of its own: the fake LLM's request log tells roadmaps apart by goal.
    """
    return {
        "goal": f"Learn SQL joins, track {uuid.uuid4().hex[:8]}",
        "level": "beginner",
        "weekly_hours": 2,
        "weeks": 2,
        **overrides,
    }


def service_env(
    *,
    database_url: str,
    redis_url: str,
    llm_base_url: str,
    secrets: SessionSecrets,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env.update(FAST_SETTINGS)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "OPENAI_BASE_URL": llm_base_url,
            # The fake LLM's process also serves the fake web search and its pages.
            **search_env(llm_base_url),
            # A sentinel: it must never show up in a log line or an error body.
            "OPENAI_API_KEY": secrets.openai_api_key,
            "JWT_SECRET_KEY": secrets.jwt_secret_key,
            "ADMIN_EMAIL": secrets.admin_email,
            "ADMIN_PASSWORD": secrets.admin_password,
        }
    )
    env.update(overrides or {})
    return env


EMITTER = Path(__file__).with_name("emitter.py")


class FakeLLMProcess(ManagedProcess):
    """The fake OpenAI-compatible server (``python -m roadmap_dev.fake_llm``)."""

    def __init__(self, log_dir: Path, config: FakeConfig) -> None:
        port = free_port()
        argv = [
            sys.executable, "-m", "roadmap_dev.fake_llm", "--host", "127.0.0.1",
            "--port", str(port), "--config-json", json.dumps(config.model_dump(mode="json")),
        ]  # fmt: skip
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env["PYTHONUNBUFFERED"] = "1"
        super().__init__("fake-llm", argv, env, log_dir)
        self.fake = FakeLLM(self.proc, "127.0.0.1", port)

    def wait_ready(self, timeout: float = 30.0) -> FakeLLM:
        def up() -> bool:
            if not self.running:
                raise AssertionError(f"fake LLM exited early:\n{self.log()}")
            return self.fake.healthy()

        wait_until(up, timeout, "the fake LLM")
        return self.fake

    def stop(self, timeout: float = 10.0) -> None:
        self.fake.stop()  # closes its HTTP client; SIGTERM, then SIGKILL after 5 s
        super().stop(timeout)


def start_fake_llm(log_dir: Path, **config: Any) -> FakeLLMProcess:
    process = FakeLLMProcess(log_dir, FakeConfig.model_validate(config))
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return process


class Stack:
    """Processes started for one test on given servers; ``stop()`` ends every one by pid."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        fake: FakeLLM,
        secrets: SessionSecrets,
        capture: Capture,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.fake = fake
        self.secrets = secrets
        self.capture = capture
        self.base_env = dict(env or {})
        self.processes: list[ManagedProcess] = []
        self.api: ApiProcess | None = None
        self._clients: list[RoadmapClient] = []

    def env(self, **overrides: str) -> dict[str, str]:
        return service_env(
            database_url=self.database_url,
            redis_url=self.redis_url,
            llm_base_url=self.fake.base_url,
            secrets=self.secrets,
            overrides={**self.base_env, **overrides},
        )

    # -- processes ----------------------------------------------------------------------

    def start(
        self,
        *,
        api: bool = True,
        content_workers: int = 1,
        logs_worker: bool = True,
        chat_worker: bool = False,
        concurrency: int = 2,
        settings: Mapping[str, str] | None = None,
        **env: str,
    ) -> Stack:
        """Start the chosen processes side by side, then wait until each is ready.

        ``settings`` and keyword arguments are environment variables of every process.
        """
        env = {**(settings or {}), **env}
        started: list[ApiProcess | ContentWorkerProcess | LogsWorkerProcess] = []
        if chat_worker:
            started.append(ChatWorkerProcess(self.env(**env), self.capture.log_dir))
        if api:
            self.api = ApiProcess(self.env(**env), self.capture.log_dir)
            started.append(self.api)
        for _ in range(content_workers):
            started.append(self._content(concurrency, env))
        if logs_worker:
            started.append(LogsWorkerProcess(self.env(**env), self.capture.log_dir))
        self.processes.extend(started)
        for process in started:
            process.wait_ready()
        return self

    def extra_api(
        self, *, uvicorn_access_log: bool = False, workers: int = 1, **env: str
    ) -> ApiProcess:
        """Another API process on the same servers (e.g. with other settings)."""
        api = ApiProcess(
            self.env(**env),
            self.capture.log_dir,
            uvicorn_access_log=uvicorn_access_log,
            workers=workers,
        )
        self.processes.append(api)
        api.wait_ready()
        return api

    def _content(self, concurrency: int, env: Mapping[str, str]) -> ContentWorkerProcess:
        merged = {"WORKER_CONCURRENCY": str(concurrency), **env}
        return ContentWorkerProcess(self.env(**merged), self.capture.log_dir, concurrency)

    def content_worker(
        self, concurrency: int = 2, settings: Mapping[str, str] | None = None, **env: str
    ) -> ContentWorkerProcess:
        worker = self._content(concurrency, {**(settings or {}), **env})
        self.processes.append(worker)
        worker.wait_ready()
        return worker

    def chat_worker(self, concurrency: int = 2, **env: str) -> ChatWorkerProcess:
        worker = ChatWorkerProcess(self.env(**env), self.capture.log_dir, concurrency)
        self.processes.append(worker)
        worker.wait_ready()
        return worker

    def logs_worker(self, concurrency: int = 1, **env: str) -> LogsWorkerProcess:
        worker = LogsWorkerProcess(self.env(**env), self.capture.log_dir, concurrency)
        self.processes.append(worker)
        worker.wait_ready()
        return worker

    async def log_emitter(self, job: uuid.UUID, events: int) -> asyncio.subprocess.Process:
        """A process that emits ``events`` execution-log events of ``job`` through the real
        emitter, then prints its counters as JSON (``tests/support/emitter.py``)."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(EMITTER),
            self.redis_url,
            str(job),
            str(events),
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(),
        )

    def content_workers(self) -> list[ContentWorkerProcess]:
        return [
            p
            for p in self.processes
            if isinstance(p, ContentWorkerProcess)
            and not isinstance(p, ChatWorkerProcess)
            and p.running
        ]

    def logs(self) -> str:
        """The tail of every process's output, for failure messages."""
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.log(3000)}" for p in self.processes)

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        errors: list[BaseException] = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except BaseException as exc:  # stop the others anyway
                errors.append(exc)
        self.processes.clear()
        if errors:
            raise errors[0]

    # -- API access ---------------------------------------------------------------------

    def client(
        self, token: str | None = None, timeout: float = 15.0, api: ApiProcess | None = None
    ) -> RoadmapClient:
        api = api or self.api
        assert api is not None, "the stack has no API process"
        client = RoadmapClient(
            api.url,
            token=token,
            timeout=timeout,
            transport=RecordingTransport(self.capture),
        )
        self._clients.append(client)
        return client

    def new_user(self, client: RoadmapClient | None = None) -> tuple[RoadmapClient, str]:
        """Register and log in a fresh user; returns its client and password."""
        client = client or self.client()
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        password = new_password()
        self.capture.secrets.add(password)
        client.register(email, password)
        client.login(email, password)
        return client, password


def run_module(argv: list[str], env: Mapping[str, str], log: Path, timeout: float) -> str:
    """Run a short helper process to completion; its output also goes to the capture dir."""
    result = subprocess.run(
        [sys.executable, *argv],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=die_with_parent(),
        check=False,
    )
    with log.open("a", encoding="utf-8") as out:
        out.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise AssertionError(f"{argv} exited with {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


@contextlib.contextmanager
def running_stack(**kwargs: Any) -> Iterator[Stack]:
    stack = Stack(**kwargs)
    try:
        yield stack
    finally:
        stack.stop()
