"""Pick a real Postgres/Redis for tests: env URL → testcontainers (if Docker answers) → embedded.

`TEST_SERVERS` narrows the choice: `containers` (testcontainers, or a clear error: a run that
asked for containers never falls back), `embedded`, or `auto` (the default, as above).
Nothing here skips or falls back to fakes: if no branch works, the error says why.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from roadmap_devservers import containers
from roadmap_devservers._process import private_temp_dir
from roadmap_devservers.embedded import EmbeddedPostgres, EmbeddedRedis
from roadmap_devservers.errors import DevServerError
from roadmap_devservers.urls import redact

log = logging.getLogger(__name__)

TEST_DATABASE_URL = "TEST_DATABASE_URL"
TEST_REDIS_URL = "TEST_REDIS_URL"
TEST_SERVERS = "TEST_SERVERS"
SERVER_MODES = ("auto", "containers", "embedded")
DOCKER_PING_TIMEOUT = 0.5

# Human-readable record of what each provider chose, shown in pytest's terminal summary.
choices: list[str] = []


def _choose(kind: str, description: str) -> None:
    message = f"{kind}: {description}"
    choices.append(message)
    log.info("%s", message)


def _env_url(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def redis_is_shared() -> bool:
    """True when Redis comes from TEST_REDIS_URL: a server other sessions may use too."""
    return _env_url(TEST_REDIS_URL) is not None and server_mode() == "auto"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def docker_available(timeout: float = DOCKER_PING_TIMEOUT) -> bool:
    """Whether a Docker engine answers `/_ping`, at the address testcontainers would use.

    A raw request with a short timeout: docker-py's own check takes longer and leaks a socket
    (a ResourceWarning, an error under `filterwarnings = error`) when there is no daemon.
    """
    try:
        from testcontainers.core.docker_client import get_docker_host  # costs 0.2 s: lazy

        host = get_docker_host() or "unix:///var/run/docker.sock"
    except Exception:  # testcontainers missing or misconfigured: no Docker branch
        log.debug("testcontainers unavailable", exc_info=True)
        return False
    parts = urlsplit(host)
    conn: http.client.HTTPConnection
    if parts.scheme in {"unix", "http+unix"}:
        conn = _UnixHTTPConnection(parts.path, timeout)
    elif parts.scheme in {"tcp", "http"} and not os.environ.get("DOCKER_TLS_VERIFY"):
        conn = http.client.HTTPConnection(
            parts.hostname or "localhost", parts.port, timeout=timeout
        )
    else:
        log.info("Docker host %s (TLS/ssh) is not probed; not using testcontainers", host)
        return False
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def server_mode() -> str:
    """`TEST_SERVERS`: where the session's servers come from (`auto` unless set)."""
    mode = os.environ.get(TEST_SERVERS, "").strip().lower() or "auto"
    if mode not in SERVER_MODES:
        raise DevServerError(f"{TEST_SERVERS}={mode!r} is not one of {', '.join(SERVER_MODES)}")
    return mode


def _source(url_variable: str) -> str:
    """`env`, `containers` or `embedded` for one server, following `TEST_SERVERS`."""
    mode = server_mode()
    has_url = _env_url(url_variable) is not None
    if mode != "auto" and has_url:
        raise DevServerError(
            f"{TEST_SERVERS}={mode} but {url_variable} is set too: unset one of them"
        )
    if mode == "containers":
        if not docker_available():
            from testcontainers.core.docker_client import get_docker_host

            raise DevServerError(
                f"{TEST_SERVERS}=containers but no container engine answers at "
                f"{get_docker_host() or 'the default Docker socket'}: start Docker, or run "
                "`infra/containers/prepare -- <your command>` (podman), or unset "
                f"{TEST_SERVERS}"
            )
        return "containers"
    if mode == "embedded":
        return "embedded"
    if has_url:
        return "env"
    return "containers" if docker_available() else "embedded"


def asked_for_containers() -> bool:
    return server_mode() == "containers"


@contextlib.contextmanager
def provide_postgres() -> Iterator[str]:
    """Yield the admin URL of a real PostgreSQL server for the duration of the block."""
    source = _source(TEST_DATABASE_URL)
    if source == "env":
        url = os.environ[TEST_DATABASE_URL].strip()
        _choose("Postgres", f"{TEST_DATABASE_URL} ({redact(url)})")
        yield url
        return
    if source == "containers":
        with containers.postgres_container() as (url, image):
            _choose("Postgres", f"testcontainers {image} ({redact(url)})")
            yield url
        return
    with private_temp_dir("roadmap-pg-") as data_dir, EmbeddedPostgres(data_dir) as server:
        _choose("Postgres", f"embedded server {server.url} (data in {data_dir})")
        yield server.url


@contextlib.contextmanager
def provide_redis() -> Iterator[str]:
    """Yield the URL (db 0) of a real Redis server for the duration of the block."""
    source = _source(TEST_REDIS_URL)
    if source == "env":
        url = os.environ[TEST_REDIS_URL].strip()
        _choose("Redis", f"{TEST_REDIS_URL} ({redact(url)}), shared: claiming a db index")
        yield url
        return
    if source == "containers":
        with containers.redis_container() as (url, image):
            _choose("Redis", f"testcontainers {image} ({url})")
            yield url
        return
    with private_temp_dir("roadmap-redis-") as data_dir, EmbeddedRedis(data_dir) as server:
        _choose("Redis", f"embedded server {server.url}")
        yield server.url
