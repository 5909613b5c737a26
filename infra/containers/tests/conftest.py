"""Fixtures of the container tests: the engine, this repository's images, the stacks.

Tests marked `containers` need an engine (`uv run pytest -m containers` under Docker, or
`infra/containers/prepare -- uv run pytest -m containers`). Without one they fail with the
engine's address and what to run; they never skip.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported as infra.containers.* (namespace packages from the repository root), the name mypy
# gives them too; --import-mode=importlib does not put the root on sys.path by itself.
_REPO = str(Path(__file__).resolve().parents[3])
if _REPO not in sys.path:
    sys.path.append(_REPO)

from infra.containers.engine import Engine  # noqa: E402
from infra.containers.images import Built, build_all  # noqa: E402


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    connected = Engine.connect()
    try:
        yield connected
    finally:
        connected.close()


@pytest.fixture(scope="session")
def images(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every image of the repository, built once per session (the engine's cache makes a
    rebuild of unchanged sources quick)."""
    return build_all(engine, tmp_path_factory.mktemp("image-builds"))
