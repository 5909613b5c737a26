"""PostgreSQL and Redis from testcontainers: loopback only, labelled, always removed.

The tests marked `containers` need an engine (`uv run pytest -m containers`, under Docker or
`infra/containers/prepare -- …`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import docker
import pytest
import redis

from roadmap_devservers import containers


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    engine = docker.from_env()
    try:
        engine.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(
            f"no container engine answers ({exc}): run `infra/containers/prepare -- uv run "
            "pytest -m containers`, or start Docker"
        )
    yield engine
    engine.close()


def _ours(client: Any) -> list[Any]:
    owner = containers.owner_value()
    found = client.containers.list(all=True, filters={"label": containers.OWNER_LABEL})
    return [c for c in found if c.labels.get(containers.OWNER_LABEL) == owner]


@pytest.mark.containers
async def test_postgres_listens_on_loopback_and_goes_away(client: Any) -> None:
    with containers.postgres_container() as (url, image):
        assert url.startswith("postgresql://postgres:postgres@127.0.0.1:")
        assert image == containers.postgres_image()
        (container,) = _ours(client)
        bindings = container.attrs["HostConfig"]["PortBindings"]["5432/tcp"]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SHOW max_connections") == "200"
        finally:
            await conn.close()
    assert _ours(client) == []


@pytest.mark.containers
def test_redis_listens_on_loopback_and_goes_away_after_an_error(client: Any) -> None:
    def failing_test() -> None:
        with containers.redis_container() as (url, _):
            assert url.startswith("redis://127.0.0.1:")
            (container,) = _ours(client)
            bindings = container.attrs["HostConfig"]["PortBindings"]["6379/tcp"]
            assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
            client_ = redis.Redis.from_url(url)
            try:
                assert client_.ping()
            finally:
                client_.close()
            raise RuntimeError("a test failed")

    with pytest.raises(RuntimeError, match="a test failed"):
        failing_test()
    assert _ours(client) == []


@pytest.mark.containers
def test_sigterm_removes_the_container(client: Any) -> None:
    """An interrupted session (CI's timeout sends SIGTERM) still removes its containers."""
    script = textwrap.dedent(
        """
        import json, sys, time
        from roadmap_devservers import containers
        with containers.redis_container() as (url, image):
            print(json.dumps({"owner": containers.owner_value()}), flush=True)
            time.sleep(120)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert child.stdout is not None
        owner = json.loads(child.stdout.readline())["owner"]
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
    left = client.containers.list(all=True, filters={"label": f"{containers.OWNER_LABEL}={owner}"})
    assert left == []


@pytest.mark.containers
def test_orphans_of_dead_owners_are_reaped_and_live_ones_kept(client: Any) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    image = containers.redis_image()
    labels = {
        "dead": {containers.OWNER_LABEL: containers.owner_value(dead.pid)},
        "alive": containers.owner_labels(),
        "elsewhere": {containers.OWNER_LABEL: "another-boot/1/1"},
    }
    created = {
        name: client.containers.create(image, labels=label, name=f"reap-{name}-{os.getpid()}")
        for name, label in labels.items()
    }
    try:
        removed = containers.reap_orphans(client)
        assert created["dead"].name in removed
        names = {c.name for c in client.containers.list(all=True)}
        assert created["dead"].name not in names
        assert {created["alive"].name, created["elsewhere"].name} <= names
    finally:
        for container in created.values():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def test_the_owner_label_names_this_process_until_it_exits() -> None:
    assert not containers.owner_is_gone(containers.owner_value())
    child = subprocess.Popen(["sleep", "5"])
    value = containers.owner_value(child.pid)
    assert not containers.owner_is_gone(value)
    child.kill()
    child.wait()
    deadline = time.monotonic() + 5
    while not containers.owner_is_gone(value) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert containers.owner_is_gone(value)
