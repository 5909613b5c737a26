"""The whole system on one machine: Postgres, Redis, migrations, API, workers, fake LLM.

Used by `roadmap up` (in the foreground, children's output on the terminal) and
`roadmap demo` (in the background, children's output only in `.roadmap/logs/`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import os
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncpg
import httpx
from rich.console import Console
from rich.markup import escape

from roadmap_client import ApiError, RoadmapClient
from roadmap_dev import credentials, state
from roadmap_dev.credentials import Account, Credentials
from roadmap_dev.errors import (
    MissingToolError,
    PortInUseError,
    RoadmapError,
    StackFailedError,
    StaleDataError,
)
from roadmap_dev.fake_search import search_env
from roadmap_dev.paths import Layout
from roadmap_dev.stack import Child, ChildSpec, Output, Supervisor, process_start_time
from roadmap_devservers.embedded import EmbeddedPostgres, EmbeddedRedis, remove_data_dir
from roadmap_devservers.errors import DevServerError
from roadmap_devservers.errors import PortInUseError as ServerPortInUseError
from roadmap_devservers.errors import StaleDataDirError as ServerStaleDataError
from roadmap_devservers.urls import redact, with_path

# Bump when the layout of `.roadmap/` changes in a way an older folder cannot be reused.
DATA_LAYOUT_VERSION = "1"
DATABASE_NAME = "roadmap"
CONTENT_APP = "roadmap_worker_content.app:celery_app"
LOGS_APP = "roadmap_worker_logs.app:celery_app"
# The API's launcher (roadmap_api.serve): uvicorn with the API's HTTP limits, as the images.
API_MODULE = "roadmap_api"

# Modules each child imports, checked before anything starts so a half-installed checkout
# fails with one line instead of a traceback from a child.
REQUIRED_MODULES = {
    "uvicorn": "uvicorn",
    "celery": "celery",
    "roadmap_api.serve": "the API service (services/api)",
    "roadmap_web.app": "the web UI (services/web)",
    "roadmap_worker_content.app": "the content worker (services/worker-content)",
    "roadmap_worker_logs.app": "the logs worker (services/worker-logs)",
    "roadmap_db.cli": "the database package (libs/db)",
}
FAKE_LLM_MODULE = "roadmap_dev.fake_llm"
WEB_APP = "roadmap_web.app:app"


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port
    web_port: int = 8080  # the browser UI; 0: any free port
    fake_latency_ms: int = 250
    fake_fault_rate: float = 0.0
    fake_seed: int | None = None
    flower: bool = False
    flower_port: int = 5555
    echo: bool = True  # children's output on the terminal (else only in log files)
    ready_timeout: float = 90.0
    stop_timeout: float = 10.0


@dataclass
class StackInfo:
    api_url: str
    web_url: str
    database: str
    redis: str
    llm: str
    admin: Account | None
    admin_note: str
    demo: Account
    flower_url: str | None = None
    log_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def require_modules(names: dict[str, str]) -> None:
    missing = [what for module, what in names.items() if not module_available(module)]
    if not missing:
        return
    if shutil.which("uv") is None:
        raise MissingToolError(
            f"cannot import {', '.join(missing)} and `uv` is missing: run `pip install uv`, "
            "then `uv run roadmap …` from the repo root"
        )
    raise MissingToolError(
        f"cannot import {', '.join(missing)}: run `uv sync` in the repo root "
        "(or start the CLI with `uv run roadmap …`)"
    )


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option uvicorn sets: a port in TIME_WAIT after the last run is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def ensure_port_free(host: str, port: int, what: str, option: str) -> None:
    if not port_free(host, port):
        raise PortInUseError(
            f"port {port} on {host} ({what}) is already in use: stop the program using it "
            f"(`roadmap down` if it is another stack) or pass {option} N"
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def env_value(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


async def _ensure_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


class DevStack:
    """Starts everything in `start()`; `stop()` (or leaving the `with` block) stops it all."""

    def __init__(
        self,
        layout: Layout,
        options: StackOptions,
        *,
        console: Console,
        stop: threading.Event,
    ) -> None:
        self.layout = layout
        self.options = options
        self.console = console
        self.stop_event = stop
        self.supervisor = Supervisor(
            Output(console if options.echo else None, layout.logs_dir),
            stop_timeout=options.stop_timeout,
            on_change=self._record,
        )
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.api_url: str | None = None
        self._recording = False

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> StackInfo:
        opts = self.options
        use_fake = env_value("OPENAI_API_KEY") is None and env_value("OPENAI_BASE_URL") is None
        # Cheap checks first, so a mistake costs no server start.
        self._prepare_data_dir()
        running = state.running_stack(self.layout.stack_file)
        if running is not None:
            where = f" with the API at {running.api_url}" if running.api_url else ""
            raise RoadmapError(
                f"a stack is already running from {self.layout.data_dir} (pid {running.cli.pid})"
                f"{where}: use it, or stop it with `uv run roadmap down`"
            )
        port = opts.port or free_port(opts.host)
        ensure_port_free(opts.host, port, "API", "--port")
        web_port = opts.web_port or free_port(opts.host)
        ensure_port_free(opts.host, web_port, "web UI", "--web-port")
        if opts.flower:
            ensure_port_free(opts.host, opts.flower_port, "flower", "--flower-port")
        required = dict(REQUIRED_MODULES)
        if use_fake:
            required[FAKE_LLM_MODULE] = "the fake LLM server (roadmap_dev.fake_llm)"
        require_modules(required)
        if opts.flower and not module_available("flower"):
            raise MissingToolError(
                "flower is not installed: run `uv run --with flower roadmap up --flower` "
                "(or leave out --flower)"
            )
        self._recording = True
        self._record()

        creds, fresh = credentials.load_or_create(self.layout.credentials_file)
        database_url, database_label = self._start_postgres()
        self._check_stop()
        redis_url, redis_label = self._start_redis()
        self._check_stop()

        env = self._child_env(database_url, redis_url, creds)
        self._say("running the database migrations…")
        admin_outcome = self._migrate(env)
        self._check_stop()

        warnings: list[str] = []
        llm_label = self._llm_label()
        if use_fake:
            self._say("starting the fake LLM (OPENAI_API_KEY is not set)…")
            llm_label = self._start_fake_llm(env)
        self._say("starting the API, the content worker and the logs worker…")
        self.api_url = f"http://{opts.host}:{port}"
        api = self.supervisor.spawn(
            ChildSpec(
                name="api",
                argv=[
                    sys.executable, "-m", API_MODULE,
                    "--host", opts.host, "--port", str(port),
                    "--timeout-graceful-shutdown", "5",
                ],
                env=env, cwd=self.layout.root, color="cyan", stop_phase=0,
            )
        )  # fmt: skip
        self._spawn_workers(env)
        web_url = f"http://{opts.host}:{web_port}"
        web = self._spawn_web(env, web_port)
        flower_url = self._start_flower(env, creds) if opts.flower else None
        self.supervisor.wait_ready(
            api,
            lambda: http_ok(f"{self.api_url}/healthz"),
            stop=self.stop_event,
            timeout=opts.ready_timeout,
            what="answering /healthz",
        )
        self.supervisor.wait_ready(
            web,
            lambda: http_ok(f"{web_url}/readyz"),
            stop=self.stop_event,
            timeout=opts.ready_timeout,
            what="answering /readyz",
        )
        self._record()
        self._say("waiting for the workers to report ready…")
        if not self._wait_readyz(api):
            warnings.append(
                f"{self.api_url}/readyz does not report ready yet (workers still starting?)"
            )
        self._ensure_demo_user(creds.demo)
        admin, admin_note = self._admin_account(creds, fresh, admin_outcome)
        return StackInfo(
            api_url=self.api_url,
            web_url=web_url,
            database=database_label,
            redis=redis_label,
            llm=llm_label,
            admin=admin,
            admin_note=admin_note,
            demo=creds.demo,
            flower_url=flower_url,
            log_dir=self.layout.logs_dir,
            warnings=warnings,
        )

    def watch(self, done: threading.Event | None = None) -> Child | None:
        """Block until Ctrl-C/SIGTERM, `done`, or a child dying (returned)."""
        return self.supervisor.watch(self.stop_event, done)

    def failure_message(self, child: Child) -> str:
        return self.supervisor.failure_message(child, "on its own; stopped the stack")

    def stop(self) -> None:
        self.supervisor.stop_all()
        for server in (self.redis, self.postgres):
            if server is not None:
                with contextlib.suppress(DevServerError, OSError):
                    server.stop()
        self.redis = self.postgres = None
        if self._recording:
            self._recording = False
            record = state.read(self.layout.stack_file)
            if record is not None and record.cli.pid == os.getpid():
                self.layout.stack_file.unlink(missing_ok=True)

    # -- steps -----------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.console.print(f"[dim]{escape(message)}[/]")

    def _check_stop(self) -> None:
        if self.stop_event.is_set():
            raise KeyboardInterrupt

    def _prepare_data_dir(self) -> None:
        data = self.layout.data_dir
        version_file = self.layout.version_file
        if version_file.is_file():
            found = version_file.read_text().strip()
            if found != DATA_LAYOUT_VERSION:
                raise StaleDataError(
                    f"{data} was created by another version of the roadmap CLI (data layout "
                    f"{found}, this one uses {DATA_LAYOUT_VERSION}): run `uv run roadmap reset` "
                    "to delete it and start fresh"
                )
            return
        # Other tools keep their own folders in here (bench runs): only ours tell the version.
        ours = (self.layout.postgres_dir, self.layout.redis_dir, self.layout.credentials_file)
        if any(path.exists() for path in ours):
            raise StaleDataError(
                f"{data} exists but was not created by this version of the roadmap CLI: "
                "run `uv run roadmap reset` to delete it and start fresh"
            )
        data.mkdir(parents=True, exist_ok=True)
        # World-traversable: as root, the embedded Postgres runs as another user inside it.
        data.chmod(0o755)
        version_file.write_text(DATA_LAYOUT_VERSION + "\n")

    def _start_postgres(self) -> tuple[str, str]:
        url = env_value("DATABASE_URL")
        if url is not None:
            return url, f"{redact(url)} (DATABASE_URL)"
        self._say(f"starting PostgreSQL (embedded, data in {self.layout.postgres_dir})…")
        server = EmbeddedPostgres(self.layout.postgres_dir)
        try:
            admin_url = server.start()
        except ServerStaleDataError as exc:
            raise StaleDataError(str(exc)) from exc
        except ServerPortInUseError as exc:
            raise PortInUseError(str(exc)) from exc
        except DevServerError as exc:
            raise StackFailedError(f"embedded PostgreSQL: {exc}") from exc
        self.postgres = server
        self._record()
        asyncio.run(_ensure_database(admin_url, DATABASE_NAME))
        url = with_path(admin_url, DATABASE_NAME)
        if server.home != self.layout.postgres_dir:
            # As root, with the checkout closed to the server's user: `reset` deletes it too.
            return url, f"{url} (embedded, data in {server.home}, linked from {server.data_dir})"
        return url, f"{url} (embedded, data in {self.layout.postgres_dir})"

    def _start_redis(self) -> tuple[str, str]:
        url = env_value("REDIS_URL")
        if url is not None:
            return url, f"{redact(url)} (REDIS_URL)"
        self._say("starting Redis (embedded)…")
        server = EmbeddedRedis(self.layout.redis_dir, persist=True)
        try:
            url = server.start()
        except ServerPortInUseError as exc:
            raise PortInUseError(str(exc)) from exc
        except DevServerError as exc:
            raise StackFailedError(f"embedded Redis: {exc}") from exc
        self.redis = server
        self._record()
        return url, f"{url} (embedded, data in {self.layout.redis_dir})"

    def _child_env(self, database_url: str, redis_url: str, creds: Credentials) -> dict[str, str]:
        env = dict(os.environ)
        env["DATABASE_URL"] = database_url
        env["REDIS_URL"] = redis_url
        env.setdefault("APP_ENV", "development")
        # A person reads these lines: plain text, and uvicorn's one-line access log only.
        env.setdefault("LOG_JSON", "false")
        env.setdefault("ACCESS_LOG", "false")
        env.setdefault("JWT_SECRET_KEY", creds.jwt_secret_key)
        # SIGTERM becomes Celery's soft shutdown: running tasks get a few seconds, then their
        # messages go back to Redis (the worker's own entry point sets the same).
        env.setdefault("REMAP_SIGTERM", "SIGQUIT")
        env.setdefault("SOFT_SHUTDOWN_TIMEOUT_S", "4")
        if env_value("ADMIN_EMAIL") is None or env_value("ADMIN_PASSWORD") is None:
            env["ADMIN_EMAIL"] = creds.admin.email
            env["ADMIN_PASSWORD"] = creds.admin.password
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _migrate(self, env: dict[str, str]) -> str:
        child = self.supervisor.run_once(
            ChildSpec(
                name="migrate",
                argv=[sys.executable, "-m", "roadmap_db.cli", "migrate"],
                env=env,
                cwd=self.layout.root,
                color="white",
            ),
            stop=self.stop_event,
            timeout=180,
        )
        output = "\n".join(child.tail)
        if child.returncode != 0:
            if "Can't locate revision" in output or "No such revision" in output:
                where = (
                    "DATABASE_URL points at a database"
                    if env_value("DATABASE_URL")
                    else f"the database in {self.layout.data_dir} was"
                )
                raise StaleDataError(
                    f"{where} migrated by a newer version of Roadmap Agent: "
                    "update your checkout, or run `uv run roadmap reset` (embedded data only)"
                )
            raise StackFailedError(self.supervisor.failure_message(child, "while migrating"))
        for line in child.tail:
            if line.startswith("admin user:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def _llm_label(self) -> str:
        base = env_value("OPENAI_BASE_URL")
        if base is not None:
            return f"{base} (OPENAI_BASE_URL)"
        return "OpenAI (OPENAI_API_KEY is set)"

    def _start_fake_llm(self, env: dict[str, str]) -> str:
        opts = self.options
        port = free_port(opts.host)
        argv = [
            sys.executable, "-m", FAKE_LLM_MODULE,
            "--host", opts.host, "--port", str(port),
            "--latency-ms", str(opts.fake_latency_ms),
            "--fault-rate", str(opts.fake_fault_rate),
        ]  # fmt: skip
        if opts.fake_seed is not None:
            argv += ["--seed", str(opts.fake_seed)]
        child = self.supervisor.spawn(
            ChildSpec(
                name="fake-llm", argv=argv, env=env, cwd=self.layout.root, color="yellow",
                stop_phase=1,
            )
        )  # fmt: skip
        self.supervisor.wait_ready(
            child,
            lambda: tcp_open(opts.host, port),
            stop=self.stop_event,
            timeout=30,
            what="listening",
        )
        base_url = f"http://{opts.host}:{port}/v1"
        env["OPENAI_BASE_URL"] = base_url
        env["OPENAI_API_KEY"] = "local-fake-llm"  # the SDK insists on a key; the fake ignores it
        if env_value("SEARCH_PROVIDER") is None:
            env.update(search_env(base_url))
        return (
            f"fake LLM at {base_url} — OPENAI_API_KEY is not set, so no real model is called "
            f"(latency {opts.fake_latency_ms} ms, fault rate {opts.fake_fault_rate})"
        )

    def _spawn_workers(self, env: dict[str, str]) -> None:
        celery = [sys.executable, "-m", "celery"]
        self.supervisor.spawn(
            ChildSpec(
                name="worker-content",
                argv=[
                    *celery, "-A", CONTENT_APP, "worker", "-Q", "content_generation",
                    "--pool", "prefork", "--loglevel", "INFO", "-n", "content@%h",
                ],
                env=env, cwd=self.layout.root, color="magenta", stop_phase=0,
            )
        )  # fmt: skip
        # The mentor chat's answers: the content worker's code in a process of its own,
        # so an answer never waits behind roadmap generation.
        self.supervisor.spawn(
            ChildSpec(
                name="worker-chat",
                argv=[
                    *celery, "-A", CONTENT_APP, "worker", "-Q", "chat",
                    "--pool", "prefork", "-c", "2", "--loglevel", "INFO", "-n", "chat@%h",
                ],
                env=env, cwd=self.layout.root, color="cyan", stop_phase=0,
            )
        )  # fmt: skip
        self.supervisor.spawn(
            ChildSpec(
                name="worker-logs",
                argv=[*celery, "-A", LOGS_APP, "worker", "-Q", "logs", "--loglevel", "INFO",
                      "-n", "logs@%h"],
                env=env, cwd=self.layout.root, color="blue",
                # Last: it writes the execution logs the others shipped while stopping.
                stop_phase=2,
            )
        )  # fmt: skip

    def _spawn_web(self, env: dict[str, str], port: int) -> Child:
        assert self.api_url is not None
        # The UI reaches everything through the API, as in production; nothing else it needs.
        web_env = {**env, "API_URL": self.api_url}
        return self.supervisor.spawn(
            ChildSpec(
                name="web",
                argv=[
                    sys.executable, "-m", "uvicorn", WEB_APP, "--host", self.options.host,
                    "--port", str(port), "--timeout-graceful-shutdown", "2", "--no-access-log",
                ],
                env=web_env, cwd=self.layout.root, color="bright_green", stop_phase=0,
            )
        )  # fmt: skip

    def _start_flower(self, env: dict[str, str], creds: Credentials) -> str:
        opts = self.options
        flower_env = dict(env)
        # Flower reads basic auth from its env: it stays off the command line (`ps`).
        flower_env["FLOWER_BASIC_AUTH"] = f"{creds.admin.email}:{creds.admin.password}"
        self.supervisor.spawn(
            ChildSpec(
                name="flower",
                argv=[
                    sys.executable, "-m", "celery", "-A", CONTENT_APP, "flower",
                    f"--address={opts.host}", f"--port={opts.flower_port}",
                ],
                env=flower_env, cwd=self.layout.root, color="green", stop_phase=0,
            )
        )  # fmt: skip
        return f"http://{opts.host}:{opts.flower_port} (log in as the admin)"

    def _wait_readyz(self, api: Child) -> bool:
        deadline = time.monotonic() + min(30.0, self.options.ready_timeout)
        while time.monotonic() < deadline:
            self._check_stop()
            if api.returncode is not None:
                raise StackFailedError(self.supervisor.failure_message(api, "during startup"))
            dead = self.supervisor.exited()
            if dead is not None:
                raise StackFailedError(self.supervisor.failure_message(dead, "during startup"))
            if http_ok(f"{self.api_url}/readyz"):
                return True
            time.sleep(0.25)
        return False

    def _ensure_demo_user(self, demo: Account) -> None:
        assert self.api_url is not None
        with RoadmapClient(self.api_url) as client:
            try:
                client.register(demo.email, demo.password, display_name="Demo learner")
            except ApiError as exc:
                if exc.status != 409:  # 409: created by an earlier run
                    raise StackFailedError(f"could not create the demo user: {exc}") from exc

    def _admin_account(
        self, creds: Credentials, fresh: bool, outcome: str
    ) -> tuple[Account | None, str]:
        if env_value("ADMIN_EMAIL") and env_value("ADMIN_PASSWORD"):
            return None, "from ADMIN_EMAIL/ADMIN_PASSWORD"
        if outcome == "unchanged" and fresh:
            return creds.admin, (
                "this admin existed before the credentials file was made: "
                "its password is not the one shown"
            )
        notes = {
            "created": "created just now",
            "unchanged": f"as before; kept in {self.layout.credentials_file}",
            "promoted": "existing user promoted to admin",
        }
        return creds.admin, notes.get(outcome, f"admin user {outcome}")

    def _record(self) -> None:
        if not self._recording:
            return
        me = os.getpid()
        children = [
            state.ProcessRecord(
                name=c.name,
                pid=c.pid,
                started_at=c.started_at,
                stop_signal=int(c.spec.stop_signal),
            )
            for c in self.supervisor.children
            if c.returncode is None
        ]
        servers = []
        for name, server, sig in (
            ("postgres", self.postgres, signal.SIGINT),
            ("redis", self.redis, signal.SIGTERM),
        ):
            pid = server.pid if server is not None else None
            if pid is not None:
                servers.append(
                    state.ProcessRecord(
                        name=name, pid=pid, started_at=process_start_time(pid), stop_signal=sig
                    )
                )
        state.write(
            self.layout.stack_file,
            state.StackRecord(
                cli=state.ProcessRecord(name="roadmap", pid=me, started_at=process_start_time(me)),
                api_url=self.api_url,
                children=children,
                servers=servers,
            ),
        )


def reset_data(layout: Layout) -> bool:
    """Delete the data folder (and server files kept elsewhere for it); True if there was one."""
    if not layout.data_dir.exists():
        return False
    remove_data_dir(layout.data_dir)
    if layout.data_dir.exists():
        shutil.rmtree(layout.data_dir)  # raises with the reason if something is left
    return True
