"""Benchmark 9 — images: size of each image and its start time to healthy.

Needs a container engine (Docker, or podman through `infra/containers/prepare -- …`); without
one the benchmark is "not available". The images are built as the container tests build them
(`infra/containers/images.py`; the engine's cache makes unchanged ones quick), then run as
Railway runs them (`infra/containers/railway_stack.py`: the Railway definition's commands,
variables and limits, on one container network with PostgreSQL, Redis and the fake LLM).

- Size: the image's layers, uncompressed, as `docker images` shows them. When the base is not
  the Dockerfiles' default (`ROADMAP_PYTHON_IMAGE`, e.g. the local stand-in for
  python:3.11-slim where no registry is reachable), the report gives base + what the service
  adds, and says so: only the service's part is the same as on Railway.
- Start to healthy: from `docker run` to the API answering its Railway health check
  (`/healthz`) or to a worker's first heartbeat in Redis (its pool has forked and it takes
  tasks), with PostgreSQL, Redis and the migration already done. Each repeat replaces the
  running container with a new one.

Targets: each service image ≤ 250 MB; each start ≤ 5 s.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bench.lib.context import Context
from bench.lib.registry import NotAvailable
from bench.lib.results import BenchResult, at_most
from bench.lib.stats import Spread

TITLE = "Images: size and start to healthy"
SIZE_GOAL_MB = 250.0
START_GOAL_S = 5.0
MB = 1_000_000  # what `docker images` calls MB


def run(ctx: Context) -> dict[str, Any]:
    repo = str(Path(__file__).resolve().parents[1])
    if repo not in sys.path:
        sys.path.append(repo)
    from infra.containers.engine import PYTHON_IMAGE_ENV, Engine, EngineError
    from infra.containers.images import (
        API_IMAGE,
        CONTENT_IMAGE,
        FAKE_LLM_IMAGE,
        LOGS_IMAGE,
        SERVICE_IMAGES,
        SINGLE_IMAGE,
        Built,
        build,
    )
    from infra.containers.railway_stack import API, CONTENT, LOGS, RailwayStack, Roles

    try:
        engine = Engine.connect()
    except EngineError as exc:
        raise NotAvailable(str(exc)) from exc
    repeat = ctx.repeat
    result = BenchResult(TITLE)
    log_dir = ctx.workdir / "images"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        specs = (*SERVICE_IMAGES, SINGLE_IMAGE, FAKE_LLM_IMAGE)
        if ctx.smoke and all(engine.image_id(spec.tag) for spec in specs):
            # Smoke mode (CI) runs right after the image tests built them; a full run builds.
            built = {spec.name: Built(spec, spec.tag, 0.0) for spec in specs}
            result.notes.append("smoke mode: the images already built were measured, not rebuilt")
        else:
            built = {spec.name: build(engine, spec, log_dir) for spec in specs}
        base = os.environ.get(PYTHON_IMAGE_ENV, "").strip()
        official = base == "" or base.startswith("python:")
        base_mb = engine.image_size(base) / MB if base else None
        result.settings = {
            "engine": f"{'podman' if engine.podman else 'Docker'} at {engine.host}",
            "base image": (base or "each Dockerfile's default (python:3.11-slim)")
            + ("" if official else " — a local stand-in for python:3.11-slim, see the notes"),
            "start": "docker run → /healthz 200 (API) or first heartbeat in Redis (workers); "
            "PostgreSQL, Redis and the migration already up. The single image's API role runs "
            "`roadmap-db migrate` before uvicorn (its entrypoint's default, RUN_MIGRATIONS=true), "
            "so its start includes a migration that finds nothing to do",
            "repeats": f"{repeat} starts per image",
        }
        for spec in (*SERVICE_IMAGES, SINGLE_IMAGE):
            size_mb = engine.image_size(built[spec.name].tag) / MB
            result.figure(f"{spec.name} image size", "MB", [size_mb], "{:.0f}")
            if base_mb is not None:
                result.figure(
                    f"{spec.name}: what it adds to the base", "MB", [size_mb - base_mb], "{:.0f}"
                )
            if spec in SERVICE_IMAGES:
                result.target(
                    f"{spec.name} image size",
                    f"≤ {SIZE_GOAL_MB:.0f} MB",
                    f"{size_mb:.0f} MB"
                    + (
                        ""
                        if base_mb is None
                        else f" = base {base_mb:.0f} + {size_mb - base_mb:.0f}"
                    ),
                    at_most([size_mb], SIZE_GOAL_MB),
                )
        if base_mb is not None:
            result.figure("base image", "MB", [base_mb], "{:.0f}")
        if not official:
            result.notes.append(
                f"The base is {base}, built from Debian packages by infra/containers/prepare "
                "because no registry is reachable here, so the official python:3.11-slim could "
                "not be measured. 'What it adds' is the service's own layers (its virtualenv and "
                "user), the part of the image the service's code and dependencies decide."
            )

        layouts = (
            (
                "service images",
                Roles(
                    {
                        API: built[API_IMAGE.name].tag,
                        CONTENT: built[CONTENT_IMAGE.name].tag,
                        LOGS: built[LOGS_IMAGE.name].tag,
                    },
                    single_image=False,
                ),
            ),
            (
                "single image",
                Roles(dict.fromkeys((API, CONTENT, LOGS), built[SINGLE_IMAGE.name].tag), True),
            ),
        )
        for layout, roles in layouts:
            with RailwayStack(engine, roles, built[FAKE_LLM_IMAGE.name].tag) as stack:
                stack.start()
                starts: dict[str, list[float]] = {API: [], CONTENT: [], LOGS: []}
                for i in range(repeat):
                    for service in starts:
                        if i:  # the first start is the stack's own
                            stack.replace(service)
                        starts[service].append(stack.started[service].seconds_to_healthy)
            for service, values in starts.items():
                name = f"{service} ({layout}) start to healthy"
                result.figure(name, "s", values, "{:.2f}")
                result.target(
                    name, f"≤ {START_GOAL_S:g} s", f"{Spread.of(values).median:.2f} s",
                    at_most(values, START_GOAL_S),
                )  # fmt: skip
        result.raw = {"images": {name: b.tag for name, b in built.items()}, "base": base}
    finally:
        engine.close()
    return result.as_dict()
