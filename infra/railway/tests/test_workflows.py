"""The GitHub workflows and CODEOWNERS, checked against the uv workspace graph.

They cannot run here (no GitHub runner, no Docker engine): they are linted with
`zizmor --offline` and GitHub's workflow schema, and their structure is checked below.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.railway.tests.railway_testkit import (
    APP_SERVICES,
    REPO,
    ROLE_SERVICES,
    VENV_BIN,
    WORKFLOWS,
    WORKSPACE,
    AppService,
    expected_workflow_paths,
    service_workflow,
    with_paths,
)

# Exact versions of the service containers every workflow tests against (a floating tag
# would change under the tests). PostgreSQL 18 and Redis 8, as on Railway.
SERVICE_IMAGES = {"postgres": "postgres:18.1", "redis": "redis:8.2.2"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return data


def all_steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def token_secret(service: str) -> str:
    return "RAILWAY_TOKEN_" + service.upper().replace("-", "_")


def test_workflows_match_the_github_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert {Path(f).name for f in files} >= set(expected_workflow_paths())
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


@pytest.mark.parametrize("name", sorted(expected_workflow_paths()))
def test_path_filters_come_from_the_workspace_graph(name: str) -> None:
    """A service's pipeline (and its deploy) runs exactly when `roadmap affected` lists it;
    the suites run when anything they import changes. To update the lists after a change to
    the graph: `uv run python infra/railway/tests/railway_testkit.py`."""
    expected = expected_workflow_paths()[name]
    workflow = load(WORKFLOWS / name)
    for event in ("push", "pull_request"):
        assert workflow["on"][event]["paths"] == expected, (
            f"{name} {event} paths differ from the workspace graph; run"
            " `uv run python infra/railway/tests/railway_testkit.py` to regenerate them"
        )
    assert workflow["on"]["push"]["branches"] == ["main"]


def test_the_path_writer_only_touches_paths() -> None:
    text = (WORKFLOWS / "api.yml").read_text()
    rewritten = with_paths(text, ["x/**"])
    assert rewritten.count('      - "x/**"\n') == 2
    assert with_paths(rewritten, expected_workflow_paths()["api.yml"]) == text


def test_a_service_pipeline_never_runs_for_dev_only_members(app_service: AppService) -> None:
    paths = load(service_workflow(app_service.name))["on"]["push"]["paths"]
    closure = WORKSPACE.runtime_closure(app_service.name)
    for member in WORKSPACE.members.values():
        if member.name not in closure:
            assert f"{member.folder}/**" not in paths, member.folder


def test_service_workflow_checks_boots_and_deploys_its_member(app_service: AppService) -> None:
    workflow = load(service_workflow(app_service.name))
    assert workflow["env"]["MEMBER"] == app_service.name
    assert workflow["env"]["MEMBER_DIR"] == app_service.folder
    jobs = workflow["jobs"]
    assert jobs["image"]["needs"] == "check"
    assert jobs["deploy"]["needs"] == "image"
    check = runs(jobs["check"])
    # Runtime dependencies alone: installed without any dev group, imported and started.
    assert 'uv sync --package "$MEMBER" --no-dev' in check
    assert '.venv-runtime/bin/python .ci/service_check.py check "$MEMBER"' in check
    assert 'uv sync --package "$MEMBER"\n' in check + "\n"
    for tool in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert tool in check
    image = runs(jobs["image"])
    assert 'docker build --file "$MEMBER_DIR/Dockerfile"' in image
    # The image boots against real service containers and must get ready.
    assert 'bash .ci/image_smoke.sh "$MEMBER:$GITHUB_SHA" "$MEMBER"' in image
    assert set(jobs["image"]["services"]) == {"postgres", "redis"}


def test_each_service_deploys_with_its_own_token_and_environment(app_service: AppService) -> None:
    workflow = load(service_workflow(app_service.name))
    deploy = workflow["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    # A GitHub environment per service: its reviewers approve, and only it holds the token.
    assert deploy["environment"] == f"production-{app_service.name}"
    up, *roles = [s for s in deploy["steps"] if "railway up" in s.get("run", "")]
    assert up["run"] == 'railway up --ci --service "$MEMBER"'
    # The services that run another role of this image deploy with it, under its token.
    expected = [r for r, member in ROLE_SERVICES.items() if member == app_service.name]
    assert [s["run"] for s in roles] == [f"railway up --ci --service {r}" for r in expected]
    for step in (up, *roles):
        token = f"${{{{ secrets.{token_secret(app_service.name)} }}}}"
        assert step["env"] == {"RAILWAY_TOKEN": token}


def test_no_two_services_share_a_token() -> None:
    used: dict[str, str] = {}
    for path in WORKFLOWS.glob("*.yml"):
        for secret in re.findall(r"secrets\.([A-Z0-9_]+)", path.read_text()):
            assert used.setdefault(secret, path.name) == path.name, f"{secret} in two workflows"
    assert "RAILWAY_TOKEN" not in used, "the shared token is gone; each service has its own"
    assert {token_secret(s.name) for s in APP_SERVICES} <= set(used)


def test_libs_workflow_tests_every_library_and_its_dependents() -> None:
    workflow = load(WORKFLOWS / "libs.yml")
    job = workflow["jobs"]["test"]
    matrix = {row["member"]: row["dir"] for row in job["strategy"]["matrix"]["include"]}
    libraries = {m.name for m in WORKSPACE.libraries()}
    dependents = {s.name for s in APP_SERVICES if WORKSPACE.test_closure([s.name]) & libraries}
    assert set(matrix) == libraries | dependents
    for name, folder in matrix.items():
        assert folder == WORKSPACE.members[name].folder
    steps = runs(job)
    assert 'uv sync --package "$MEMBER"' in steps
    assert 'pytest "$MEMBER_DIR/tests"' in steps
    # The released-migrations test compares with main: it needs history, and the ref.
    (checkout,) = [s for s in job["steps"] if "actions/checkout" in s.get("uses", "")]
    assert checkout["with"]["fetch-depth"] == 0
    assert "github.event.before" in job["env"]["RELEASED_MIGRATIONS_REF"]


def test_tests_workflow_runs_the_root_suites_and_every_tool() -> None:
    workflow = load(WORKFLOWS / "tests.yml")
    tools = workflow["jobs"]["tools"]
    matrix = {row["member"]: row["dir"] for row in tools["strategy"]["matrix"]["include"]}
    assert matrix == {m.name: m.folder for m in WORKSPACE.tools()}
    assert 'pytest "$MEMBER_DIR/tests"' in runs(tools)
    root = runs(workflow["jobs"]["root"])
    assert "uv sync\n" in root
    assert 'pytest tests -m "not slow"' in root
    assert "pytest tests -m slow" in root


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_service_containers_are_pinned_to_exact_versions(path: Path) -> None:
    for job, spec in load(path)["jobs"].items():
        for name, container in spec.get("services", {}).items():
            assert container["image"] == SERVICE_IMAGES[name], f"{path.name}:{job}:{name}"


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


# --- CODEOWNERS ---------------------------------------------------------------------------


def codeowners() -> list[tuple[str, list[str]]]:
    rules = []
    for line in (REPO / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *teams = line.split()
            assert teams, pattern
            assert all(re.fullmatch(r"@[\w-]+/[\w-]+", t) for t in teams), line
            rules.append((pattern, teams))
    return rules


def _matches(pattern: str, path: str) -> bool:
    """CODEOWNERS matching for the patterns this file uses (gitignore-like)."""
    if pattern == "*":
        return True
    anchored = pattern.startswith("/")
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        return path.startswith(pattern) if anchored else f"/{pattern}" in f"/{path}"
    if anchored:
        return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/")
    return any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/"))


def owner_rule(path: str) -> tuple[str, list[str]]:
    """The rule GitHub applies to ``path``: the last one that matches."""
    found: tuple[str, list[str]] = ("", [])
    for pattern, teams in codeowners():
        if _matches(pattern, path):
            found = (pattern, teams)
    return found


def _tracked(*folders: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", *folders], cwd=REPO, capture_output=True, text=True, check=True
    )
    return listed.stdout.split()


def test_workflows_ci_and_infra_have_a_named_owner() -> None:
    files = _tracked(".github", ".ci", "infra", ".railway")
    assert any(f.startswith(".github/workflows/") for f in files)
    fallback = [f for f in files if owner_rule(f)[0] == "*"]
    assert not fallback, f"owned only by the catch-all `*`: {fallback}"


def test_codeowners_cover_every_service_and_library() -> None:
    for member in WORKSPACE.members.values():
        pattern, _ = owner_rule(f"{member.folder}/pyproject.toml")
        assert pattern != "*", f"{member.folder} has no owner of its own"
    service_teams = {tuple(owner_rule(f"{s.folder}/pyproject.toml")[1]) for s in APP_SERVICES}
    assert len(service_teams) == len(APP_SERVICES), "each service has its own team"
    for s in APP_SERVICES:
        workflow = service_workflow(s.name).relative_to(REPO).as_posix()
        assert owner_rule(workflow)[1] == owner_rule(f"{s.folder}/pyproject.toml")[1]
