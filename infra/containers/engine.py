"""The container engine that serves DOCKER_HOST (Docker, or podman through `prepare`), and
building this repository's images with it.

Containers are run through the Docker API (docker-py, the client testcontainers uses), so
the same code drives Docker and podman. Images are built with the engine's own CLI:
`docker build` (BuildKit: `COPY --chmod` needs it) or `podman build` (in Docker's image
format, so `HEALTHCHECK` survives; into the image store the podman service serves).

Settings (environment), all optional:
- `ROADMAP_PYTHON_IMAGE`: the Dockerfiles' base image (`--build-arg PYTHON_IMAGE`); unset,
  each Dockerfile's default, the official python:3.11-slim image;
- `ROADMAP_BUILD_CA_BUNDLE`: a CA bundle mounted over the base image's during podman builds,
  for machines whose way out re-signs TLS (this one): package downloads inside a build trust
  what the machine trusts, and the image keeps its own bundle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
from docker.errors import DockerException, ImageNotFound

REPO = Path(__file__).resolve().parents[2]
PYTHON_IMAGE_ENV = "ROADMAP_PYTHON_IMAGE"
CA_BUNDLE_ENV = "ROADMAP_BUILD_CA_BUNDLE"
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, in the official image too
BUILD_TIMEOUT_S = 900


class EngineError(RuntimeError):
    """No engine, or a build failed; the message says what to do."""


@dataclass(frozen=True)
class Engine:
    client: Any  # docker.DockerClient (untyped library)
    host: str
    podman: bool

    @classmethod
    def connect(cls) -> Engine:
        host = os.environ.get("DOCKER_HOST", "").strip() or "unix:///var/run/docker.sock"
        try:
            client = docker.DockerClient(base_url=host, timeout=120)
            version = client.version()
        except DockerException as exc:
            raise EngineError(
                f"no container engine answers at {host}: start Docker, or run the tests through "
                f"podman with `infra/containers/prepare -- uv run pytest -m containers` ({exc})"
            ) from exc
        names = [c.get("Name", "") for c in version.get("Components") or []]
        return cls(client, host, any("podman" in n.lower() for n in names))

    def close(self) -> None:
        self.client.close()

    # -- images ------------------------------------------------------------------------------

    def image_id(self, tag: str) -> str | None:
        try:
            return str(self.client.images.get(tag).id)
        except ImageNotFound:
            return None

    def image_size(self, tag: str) -> int:
        """Bytes of the image's layers, uncompressed (what `docker images` shows)."""
        return int(self.client.images.get(tag).attrs["Size"])

    def build_command(
        self, dockerfile: Path, tag: str, build_args: dict[str, str], target: str | None = None
    ) -> list[str]:
        args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
        if target:
            args.append(f"--target={target}")
        if self.podman:
            cli = shutil.which("podman")
            if cli is None:
                raise EngineError("the engine is podman, but the podman command is not on PATH")
            # The local CLI, not `--url`: a remote build ignores --volume. Root's podman and
            # the service `prepare` starts share one image store; `build` checks the API sees it.
            command = [cli, "build", "--format", "docker", "--pull=missing"]
            bundle = os.environ.get(CA_BUNDLE_ENV, "").strip()
            if bundle:
                command.append(f"--volume={bundle}:{IMAGE_CA_BUNDLE}:ro")
        else:
            cli = shutil.which("docker")
            if cli is None:
                raise EngineError("the docker command is not on PATH (needed to build images)")
            command = [cli, "build"]
        return [*command, *args, "--file", str(dockerfile), "--tag", tag, str(REPO)]

    def build(
        self,
        dockerfile: Path,
        tag: str,
        *,
        build_args: dict[str, str] | None = None,
        cache_stage: str | None = None,
        log: Path,
    ) -> float:
        """Build `dockerfile` (repository root as context) as `tag`; returns the seconds taken.

        With podman, what a rebuild replaces is removed: podman keeps a replaced image, and the
        last image of a multi-stage build's first stage (the dependency layers worth caching),
        as untagged images for ever. So `cache_stage` is tagged `<tag>-<stage>` (kept while
        current, removed when replaced) and the replaced final image goes too. Docker's build
        cache is Docker's to manage.
        """
        args = dict(build_args or {})
        base = os.environ.get(PYTHON_IMAGE_ENV, "").strip()
        if base:
            args.setdefault("PYTHON_IMAGE", base)
        targets: list[tuple[str | None, str]] = [(None, tag)]
        if self.podman and cache_stage:
            targets.insert(0, (cache_stage, f"{tag}-{cache_stage}"))
        old = {name: self.image_id(name) for _, name in targets}
        started = time.monotonic()
        with log.open("wb") as out:
            for stage, name in targets:
                self._run_build(self.build_command(dockerfile, name, args, stage), name, out, log)
        seconds = time.monotonic() - started
        for name, previous in old.items():
            current = self.image_id(name)
            if current is None:
                raise EngineError(
                    f"built {name}, but the engine at {self.host} does not see it: the build "
                    "used another image store (run the podman service as the user who builds)"
                )
            if self.podman and previous and previous != current:
                # Still used by a container: it goes with that one.
                with contextlib.suppress(DockerException):
                    self.client.images.remove(previous, noprune=False)
        return seconds

    @staticmethod
    def _run_build(command: list[str], name: str, out: IO[bytes], log: Path) -> None:
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineError(
                f"building {name} took over {BUILD_TIMEOUT_S} s (log: {log})"
            ) from exc
        if result.returncode != 0:
            out.flush()
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-25:])
            raise EngineError(f"building {name} failed (log: {log}):\n{tail}")
