"""This repository's images: what each is built from, and building them all.

The three service images (one per deployable, `services/*/Dockerfile`), the single image whose
`SERVICE_TYPE` picks the role (`infra/railway/Dockerfile`), and the fake LLM that stands in
for OpenAI in the container tests (`infra/containers/fake-llm.Dockerfile`, not deployed).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from infra.containers.engine import REPO, Engine

TAG_PREFIX = "localhost/roadmap-agent"
# The fake LLM's own imports (tools/roadmap-dev/src/roadmap_dev/fake_llm), pinned to the
# versions installed in this workspace.
FAKE_LLM_REQUIREMENTS = ("fastapi", "uvicorn", "pydantic", "httpx", "psutil")


@dataclass(frozen=True)
class ImageSpec:
    name: str
    dockerfile: Path
    cache_stage: str | None = "build"  # the stage whose layers are worth keeping between builds

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}/{self.name}:test"


API_IMAGE = ImageSpec("roadmap-api", REPO / "services/api/Dockerfile")
CONTENT_IMAGE = ImageSpec("roadmap-worker-content", REPO / "services/worker-content/Dockerfile")
LOGS_IMAGE = ImageSpec("roadmap-worker-logs", REPO / "services/worker-logs/Dockerfile")
SINGLE_IMAGE = ImageSpec("roadmap-all", REPO / "infra/railway/Dockerfile")
FAKE_LLM_IMAGE = ImageSpec(
    "fake-llm", REPO / "infra/containers/fake-llm.Dockerfile", cache_stage=None
)

SERVICE_IMAGES = (API_IMAGE, CONTENT_IMAGE, LOGS_IMAGE)
ALL_IMAGES = (*SERVICE_IMAGES, SINGLE_IMAGE, FAKE_LLM_IMAGE)


@dataclass(frozen=True)
class Built:
    spec: ImageSpec
    tag: str
    build_seconds: float


def fake_llm_requirements() -> str:
    return " ".join(f"{name}=={version(name)}" for name in FAKE_LLM_REQUIREMENTS)


def build(engine: Engine, spec: ImageSpec, log_dir: Path) -> Built:
    args = {"REQUIREMENTS": fake_llm_requirements()} if spec is FAKE_LLM_IMAGE else {}
    seconds = engine.build(
        spec.dockerfile,
        spec.tag,
        build_args=args,
        cache_stage=spec.cache_stage,
        log=log_dir / f"build-{spec.name}.log",
    )
    return Built(spec, spec.tag, seconds)


def build_all(engine: Engine, log_dir: Path) -> dict[str, Built]:
    """Build every image (one after the other: the machine has two cores)."""
    return {spec.name: build(engine, spec, log_dir) for spec in ALL_IMAGES}
