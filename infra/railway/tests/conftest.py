"""Fixtures for the deployment checks (helpers live in ``railway_testkit``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# The helpers are imported as infra.railway.tests.railway_testkit (namespace packages
# from the repository root), the name mypy gives them too; --import-mode=importlib
# does not put the root on sys.path by itself. Appended, so it shadows nothing.
_REPO = str(Path(__file__).resolve().parents[3])
if _REPO not in sys.path:
    sys.path.append(_REPO)

from infra.railway.tests.railway_testkit import (  # noqa: E402
    ALL_IN_ONE_DOCKERFILE,
    APP_SERVICES,
    DEFINITION,
    RAILWAY_SERVICES,
    STUB_SOURCE,
    Dockerfile,
    Graph,
    Stubs,
    evaluate_entry_like_cli,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "app_service" in metafunc.fixturenames:
        metafunc.parametrize("app_service", APP_SERVICES, ids=[s.name for s in APP_SERVICES])
    if "railway_service" in metafunc.fixturenames:
        ids = [s.name for s in RAILWAY_SERVICES]
        metafunc.parametrize("railway_service", RAILWAY_SERVICES, ids=ids)


@pytest.fixture(scope="session")
def definition() -> ModuleType:
    spec = importlib.util.spec_from_file_location("roadmap_railway_project_under_test", DEFINITION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cli_payload(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # An unrelated working directory: the entry must not depend on where the CLI runs.
    cwd = tmp_path_factory.mktemp("railway-cwd")
    return evaluate_entry_like_cli(
        cwd, {"command": "plan", "environment": "production", "projectName": "roadmap-agent"}
    )


@pytest.fixture(scope="session")
def graph(cli_payload: dict[str, Any]) -> Graph:
    return Graph(cli_payload["project"])


@pytest.fixture(scope="session")
def graph_with_flower(definition: ModuleType) -> Graph:
    options = definition.Options(with_flower=True, api_custom_domains=("api.example.com",))
    return Graph(definition.build_project(None, options).to_graph())


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, Dockerfile]:
    found = {s.name: Dockerfile(s.dockerfile) for s in APP_SERVICES}
    found["all-in-one"] = Dockerfile(ALL_IN_ONE_DOCKERFILE)
    return found


@pytest.fixture
def stubs(tmp_path: Path) -> Stubs:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("roadmap-api", "uvicorn", "celery", "roadmap-db", "roadmap-worker-content"):
        script = bin_dir / name
        script.write_text(STUB_SOURCE.format(python=sys.executable))
        script.chmod(0o755)
    return Stubs(bin_dir, tmp_path / "calls.jsonl")
