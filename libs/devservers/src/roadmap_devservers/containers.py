"""PostgreSQL and Redis in containers (testcontainers), for tests that ask for them.

Ports are published on 127.0.0.1 only, and URLs name 127.0.0.1 with the published port
(never a container's own address): tests talk to loopback, whatever network the engine
uses. Every container carries an owner label (this machine's boot, our pid and its start
time); `reap_orphans` removes the containers of owners that died without cleaning up
(SIGKILL, power loss), since the usual reaper (Ryuk) is an image we may not be able to pull.

The images are settings: `ROADMAP_POSTGRES_IMAGE` and `ROADMAP_REDIS_IMAGE` (the official
images by default; `infra/containers/prepare` prints local stand-ins where no registry is
reachable).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from roadmap_devservers.errors import DevServerError, ServerStartError

log = logging.getLogger(__name__)

POSTGRES_IMAGE_ENV = "ROADMAP_POSTGRES_IMAGE"
REDIS_IMAGE_ENV = "ROADMAP_REDIS_IMAGE"
DEFAULT_POSTGRES_IMAGE = "postgres:18-alpine"  # same major as the embedded server
DEFAULT_REDIS_IMAGE = "redis:7-alpine"
OWNER_LABEL = "org.roadmap-agent.owner"
LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 60.0

# fsync off and more connections: a throwaway server that the whole suite shares.
POSTGRES_COMMAND = (
    "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
)


def postgres_image() -> str:
    return os.environ.get(POSTGRES_IMAGE_ENV, "").strip() or DEFAULT_POSTGRES_IMAGE


def redis_image() -> str:
    return os.environ.get(REDIS_IMAGE_ENV, "").strip() or DEFAULT_REDIS_IMAGE


# -- ownership -------------------------------------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_value(pid: int | None = None) -> str:
    """`<boot id>/<pid>/<start time>`: names one process on one machine, never reused."""
    pid = os.getpid() if pid is None else pid
    return f"{_boot_id()}/{pid}/{_start_time(pid) or '?'}"


def owner_labels() -> dict[str, str]:
    """Labels for every container this process creates."""
    return {OWNER_LABEL: owner_value()}


def owner_is_gone(value: str) -> bool:
    """True when the owner ran on this machine since its last boot and has exited.

    Containers of other machines (a shared engine) and of earlier boots are not ours to judge.
    """
    boot, _, rest = value.partition("/")
    pid_text, _, started = rest.partition("/")
    if boot != _boot_id() or not pid_text.isdigit():
        return False
    return _start_time(int(pid_text)) != started


def reap_orphans(client: Any) -> list[str]:
    """Remove containers whose owner process is gone; returns their names.

    `client` is a `docker.DockerClient`.
    """
    removed = []
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        if owner_is_gone(owner):
            with contextlib.suppress(Exception):  # already going away
                container.remove(force=True, v=True)
                removed.append(container.name)
    if removed:
        log.warning("removed containers left by processes that died: %s", ", ".join(removed))
    return removed


# -- interruption ----------------------------------------------------------------------------


_interrupting_pid: int | None = None


def _raise_interrupt(signum: int, frame: object) -> None:
    if os.getpid() != _interrupting_pid:  # a forked child: die as it would have
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt(f"signal {signum}")


def cleanup_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so `with` blocks remove their containers.

    Only when nothing else handles SIGTERM, and only from the main thread (where Python
    delivers signals).
    """
    global _interrupting_pid
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _interrupting_pid = os.getpid()
        signal.signal(signal.SIGTERM, _raise_interrupt)


# -- the containers --------------------------------------------------------------------------


def published_port(container: Any, port: int) -> int:
    """The loopback port the engine published for `port` of a testcontainers container."""
    client = container.get_docker_client()
    deadline = time.monotonic() + 10
    while True:
        mappings = client.client.api.port(container.get_container_id(), port) or []
        for mapping in mappings:
            if mapping.get("HostIp") in {LOOPBACK, ""} and mapping.get("HostPort"):
                return int(mapping["HostPort"])
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"the container engine published no loopback port for {port}: {mappings}"
            )
        time.sleep(0.1)


def _bind_loopback(container: Any, port: int) -> None:
    # A (host ip,) binding asks for a random port on that address only. The library's
    # with_bind_ports cannot express it (it wants a port number).
    container.ports[str(port)] = (LOOPBACK,)


@contextlib.contextmanager
def postgres_container() -> Iterator[tuple[str, str]]:
    """Yield (admin URL, image) of a PostgreSQL container, removed when the block exits."""
    from testcontainers.community.postgres import PostgresContainer  # 0.2 s: lazily

    image = postgres_image()
    container = PostgresContainer(
        image,
        username="postgres",
        password="postgres",  # noqa: S106 - throwaway container on loopback
        dbname="postgres",
        driver=None,
    ).with_command(POSTGRES_COMMAND)
    container.with_kwargs(labels=owner_labels())
    _bind_loopback(container, 5432)
    with _started(container, image):
        port = published_port(container, 5432)
        yield f"postgresql://postgres:postgres@{LOOPBACK}:{port}/postgres", image


@contextlib.contextmanager
def redis_container() -> Iterator[tuple[str, str]]:
    """Yield (URL of db 0, image) of a Redis container, removed when the block exits."""
    import redis
    from testcontainers.core.container import DockerContainer

    image = redis_image()
    container = DockerContainer(image).with_exposed_ports(6379)
    container.with_kwargs(labels=owner_labels())
    _bind_loopback(container, 6379)
    with _started(container, image):
        url = f"redis://{LOOPBACK}:{published_port(container, 6379)}/0"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"Redis in container {image} did not answer PING within "
                        f"{READY_TIMEOUT_S:.0f}s"
                    ) from None
                time.sleep(0.1)
            finally:
                client.close()
        yield url, image


@contextlib.contextmanager
def _started(container: Any, image: str) -> Iterator[None]:
    cleanup_on_sigterm()
    reap_orphans(container.get_docker_client().client)
    try:
        container.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        raise DevServerError(
            f"could not start a container from {image}: {exc}; is the image available to the "
            f"engine (a registry, or `infra/containers/prepare` for local stand-ins)?"
        ) from exc
    try:
        yield
    finally:
        container.stop()  # removes it and its volumes
