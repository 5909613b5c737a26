"""The per-service GitHub workflows and CODEOWNERS."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.railway.tests.railway_testkit import (
    APP_SERVICES,
    REPO,
    VENV_BIN,
    AppService,
    runtime_workspace_deps,
    workspace_members,
)

WORKFLOWS = REPO / ".github" / "workflows"
SLUGS = {s.name: s.folder.removeprefix("services/") for s in APP_SERVICES}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return data


def workflow_of(app_service: AppService) -> tuple[Path, dict[str, Any]]:
    path = WORKFLOWS / f"{SLUGS[app_service.name]}.yml"
    return path, load(path)


def all_steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


def test_workflows_match_the_github_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    # One per service, one for the libraries, one for this deployment definition.
    assert len(files) == len(APP_SERVICES) + 2
    result = subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "zizmor"), "--offline", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_each_ignored_zizmor_finding_says_why() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines):
            if "zizmor: ignore" in line:
                # The reason is the comment right above the step holding the ignore.
                start = n
                while not lines[start].lstrip().startswith("- "):
                    start -= 1
                assert lines[start - 1].lstrip().startswith("#"), f"{path.name}:{n + 1}: no reason"


def expected_paths(app_service: AppService, workflow_file: Path) -> set[str]:
    members = workspace_members()
    libs = {
        members[d].relative_to(REPO).as_posix() for d in runtime_workspace_deps(app_service.name)
    }
    return {
        f"{app_service.folder}/**",
        *(f"{lib}/**" for lib in libs),
        "pyproject.toml",
        f".github/workflows/{workflow_file.name}",
    }


def test_service_workflow_runs_only_for_its_paths(app_service: AppService) -> None:
    path, workflow = workflow_of(app_service)
    expected = expected_paths(app_service, path)
    assert set(workflow["on"]["push"]["paths"]) == expected
    assert set(workflow["on"]["pull_request"]["paths"]) == expected
    assert workflow["on"]["push"]["branches"] == ["main"]
    # A dev-only library never triggers a service pipeline (it is not in the image).
    assert not any(p.startswith(("libs/devservers", "tools/")) for p in expected)


def test_service_workflow_checks_builds_and_deploys_its_member(app_service: AppService) -> None:
    _, workflow = workflow_of(app_service)
    assert workflow["env"]["MEMBER"] == app_service.name
    assert workflow["env"]["MEMBER_DIR"] == app_service.folder
    jobs = workflow["jobs"]
    assert jobs["image"]["needs"] == "check"
    assert jobs["deploy"]["needs"] == "image"
    runs = {job: [step.get("run", "") for step in spec["steps"]] for job, spec in jobs.items()}
    check = "\n".join(runs["check"])
    assert 'uv sync --package "$MEMBER"' in check
    for tool in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert tool in check
    assert 'docker build --file "$MEMBER_DIR/Dockerfile"' in "\n".join(runs["image"])
    deploy = jobs["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["environment"] == "production"
    (up,) = [s for s in deploy["steps"] if "railway up" in s.get("run", "")]
    assert up["run"] == 'railway up --ci --service "$MEMBER"'
    assert up["env"] == {"RAILWAY_TOKEN": "${{ secrets.RAILWAY_TOKEN }}"}


def test_the_libs_workflow_tests_every_dependent_service() -> None:
    workflow = load(WORKFLOWS / "libs.yml")
    paths = {"libs/**", "pyproject.toml", ".github/workflows/libs.yml"}
    assert set(workflow["on"]["push"]["paths"]) == paths
    assert set(workflow["on"]["pull_request"]["paths"]) == paths
    matrix = {
        row["member"]: row["dir"]
        for row in workflow["jobs"]["test"]["strategy"]["matrix"]["include"]
    }
    members = workspace_members()
    libs = {name for name, folder in members.items() if folder.relative_to(REPO).parts[0] == "libs"}
    dependents = {s.name for s in APP_SERVICES if runtime_workspace_deps(s.name) & libs}
    assert set(matrix) == libs | dependents
    for name, folder in matrix.items():
        assert folder == members[name].relative_to(REPO).as_posix()
    runs = "\n".join(s.get("run", "") for s in workflow["jobs"]["test"]["steps"])
    assert 'uv sync --package "$MEMBER"' in runs
    assert 'pytest "$MEMBER_DIR/tests"' in runs


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_least_privilege_and_pinned_actions(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    for job, spec in workflow["jobs"].items():
        assert spec["permissions"] == {"contents": "read"}
        if job != "deploy":
            assert "secrets." not in str(spec), f"{path.name}:{job} must not see secrets"
    for _, step in all_steps(workflow):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            assert step["with"]["persist-credentials"] is False


def test_codeowners_cover_every_service_and_library() -> None:
    owners: dict[str, list[str]] = {}
    for line in (REPO / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *teams = line.split()
            owners[pattern] = teams
            assert teams, pattern
            assert all(re.fullmatch(r"@[\w-]+/[\w-]+", t) for t in teams), line
    for folder in workspace_members().values():
        assert f"/{folder.relative_to(REPO).as_posix()}/" in owners or "/tools/" in owners
    service_teams = {tuple(owners[f"/{s.folder}/"]) for s in APP_SERVICES}
    assert len(service_teams) == len(APP_SERVICES), "each service has its own team"
    for s in APP_SERVICES:
        assert owners[f"/.github/workflows/{SLUGS[s.name]}.yml"] == owners[f"/{s.folder}/"]
