"""How images are built with each engine (no engine needed: the commands are checked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.containers import engine
from infra.containers.engine import Engine, EngineError


@pytest.fixture
def tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")


def test_podman_builds_in_dockers_format_trusting_the_machines_cas(
    tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(engine.CA_BUNDLE_ENV, "/etc/ssl/certs/ca-certificates.crt")
    podman = Engine(client=None, host="unix:///run/x.sock", podman=True)
    command = podman.build_command(
        Path("/repo/services/api/Dockerfile"), "t:1", {"PYTHON_IMAGE": "base:1"}, "build"
    )
    assert command[:3] == ["/usr/bin/podman", "build", "--format"]
    assert command[3] == "docker"  # OCI drops HEALTHCHECK
    assert (
        "--volume=/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"
        in command
    )
    assert "--build-arg=PYTHON_IMAGE=base:1" in command
    assert "--target=build" in command
    assert command[-5:] == [
        "--file", "/repo/services/api/Dockerfile", "--tag", "t:1", str(engine.REPO)
    ]  # fmt: skip


def test_docker_builds_with_its_own_cli_and_mounts_nothing(
    tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(engine.CA_BUNDLE_ENV, "/etc/ssl/certs/ca-certificates.crt")
    docker = Engine(client=None, host="unix:///var/run/docker.sock", podman=False)
    command = docker.build_command(Path("/repo/Dockerfile"), "t:1", {})
    assert command == [
        "/usr/bin/docker",
        "build",
        "--file",
        "/repo/Dockerfile",
        "--tag",
        "t:1",
        str(engine.REPO),
    ]


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'none.sock'}")
    with pytest.raises(
        EngineError, match=r"no container engine answers at unix://.*infra/containers/prepare"
    ):
        Engine.connect()
