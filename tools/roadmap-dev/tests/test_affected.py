"""`roadmap affected`: the services a change redeploys, from the uv workspace graph."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from roadmap_dev.affected import affected
from roadmap_dev.errors import RoadmapError
from roadmap_dev.workspace import WorkspaceError, load

REPO_ROOT = Path(__file__).resolve().parents[3]
ALL = ["roadmap-api", "roadmap-worker-content", "roadmap-worker-logs"]


def roadmap_affected(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roadmap_dev.cli", "affected", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("services/api/**", ["roadmap-api"]),
        ("services/worker-logs/src/roadmap_worker_logs/app.py", ["roadmap-worker-logs"]),
        ("libs/db/**", ALL),
        ("libs/roadmap-core/**", ALL),
        ("pyproject.toml", sorted([*ALL, "roadmap-web"])),
        ("services/web/**", ["roadmap-web"]),
        # The web UI runs on the API client alone, never on the database or core libraries.
        ("clients/python/src/roadmap_client/client.py", ["roadmap-web"]),
        ("libs/**", ALL),
        ("libs/devservers/**", []),
        ("tools/**", []),
        ("bench/**", []),
        ("docs/**", []),
        ("tests/**", []),
        ("infra/**", []),
        ("README.md", []),
        ("services/api/pyproject.toml", ["roadmap-api"]),
    ],
)
def test_this_workspace(path: str, expected: list[str]) -> None:
    assert affected(REPO_ROOT, [path], None) == expected


def test_cli_prints_one_service_per_line() -> None:
    result = roadmap_affected("services/api/**", "libs/db/src/roadmap_db/models.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ALL
    nothing = roadmap_affected("docs/**", "tools/**")
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout == ""


def test_cli_errors_are_one_line() -> None:
    for args, message in [
        ((), "name the changed paths"),
        (("--since", "no-such-ref-anywhere"), "unknown git revision 'no-such-ref-anywhere'"),
        (("docs", "--since", "HEAD"), "not both"),
        (("/etc/passwd",), "outside the repository"),
    ]:
        result = roadmap_affected(*args)
        assert result.returncode == 1
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert message in lines[0]
        assert result.stdout == ""


# --- a workspace of our own: new members are picked up by construction --------------


def _member(root: Path, folder: str, name: str, deps: list[str], extra: str = "") -> None:
    path = root / folder
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "{name}"
            version = "0"
            dependencies = {deps!r}
            """
        )
        + textwrap.dedent(extra)
    )


SERVICE = """
[dependency-groups]
dev = ["pytest", "shop-devkit"]

[tool.roadmap.service]
entry = "mod:app"
settings = "mod:Settings"
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "shop"
            version = "0"
            [tool.uv.workspace]
            members = ["libs/*", "services/*", "tools/devkit"]
            exclude = ["libs/attic"]
            [dependency-groups]
            dev = ["shop-devkit", "shop-web"]
            """
        )
    )
    _member(tmp_path, "libs/core", "shop_core", ["pydantic>=2"])
    _member(tmp_path, "libs/payments", "shop-payments", ["shop-core", "httpx"])
    _member(tmp_path, "libs/attic", "shop-attic", [])
    _member(tmp_path, "services/web", "shop-web", ["shop-core"], SERVICE)
    _member(tmp_path, "services/billing", "shop-billing", ["shop-payments>=0"], SERVICE)
    _member(tmp_path, "services/notes", "shop-notes", [])  # no [tool.roadmap.service]
    _member(tmp_path, "tools/devkit", "shop-devkit", ["shop-core", "shop-web"])
    return tmp_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("libs/core/src/x.py", ["shop-billing", "shop-web"]),  # billing through payments
        ("libs/payments", ["shop-billing"]),
        ("services/web/**", ["shop-web"]),
        ("services/*/Dockerfile", ["shop-billing", "shop-web"]),
        ("**/pyproject.toml", ["shop-billing", "shop-web"]),
        ("tools/devkit/**", []),  # a dev tool that depends on a service redeploys nothing
        ("services/notes/**", []),  # a member that does not declare itself deployable
        ("libs/attic/**", []),  # excluded from the workspace
        (".", ["shop-billing", "shop-web"]),
    ],
)
def test_any_workspace(shop: Path, path: str, expected: list[str]) -> None:
    assert affected(shop, [path], None) == expected


def test_roles_come_from_the_graph(shop: Path) -> None:
    workspace = load(shop)
    assert [m.name for m in workspace.services()] == ["shop-billing", "shop-web"]
    assert [m.name for m in workspace.libraries()] == ["shop-core", "shop-payments"]
    assert [m.name for m in workspace.tools()] == ["shop-devkit", "shop-notes"]
    assert workspace.deploy_inputs("shop-billing") == [
        "libs/core/**",
        "libs/payments/**",
        "services/billing/**",
        "pyproject.toml",
    ]
    # Tests import their dev group too: the dev kit and what it needs.
    assert workspace.test_inputs(["shop-billing"]) == [
        "libs/core/**",
        "libs/payments/**",
        "services/billing/**",
        "services/web/**",
        "tools/devkit/**",
        "pyproject.toml",
    ]
    assert workspace.root_suite_inputs()[0] == "tests/**"


def test_a_broken_declaration_names_its_file(shop: Path) -> None:
    path = shop / "services" / "web" / "pyproject.toml"
    path.write_text(path.read_text().replace('entry = "mod:app"', 'entry = "mod"'))
    with pytest.raises(WorkspaceError, match=r"services/web/pyproject.toml.*entry"):
        load(shop)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_since_counts_this_branch_and_uncommitted_work_only(shop: Path) -> None:
    _git(shop, "init", "-q", "-b", "main")
    _git(shop, "add", "-A")
    _git(shop, "commit", "-qm", "start")
    _git(shop, "checkout", "-qb", "feature")
    assert affected(shop, [], "main") == []
    (shop / "libs" / "payments" / "pay.py").write_text("")  # untracked
    assert affected(shop, [], "main") == ["shop-billing"]
    _git(shop, "add", "-A")
    _git(shop, "commit", "-qm", "payments")
    # Work that lands on main after the fork is not this branch's change.
    _git(shop, "checkout", "-q", "main")
    (shop / "services" / "web" / "page.py").write_text("")
    _git(shop, "add", "-A")
    _git(shop, "commit", "-qm", "web")
    _git(shop, "checkout", "-q", "feature")
    assert affected(shop, [], "main") == ["shop-billing"]
    # Uncommitted edits of tracked files count.
    (shop / "libs" / "core" / "pyproject.toml").write_text(
        (shop / "libs" / "core" / "pyproject.toml").read_text() + "\n"
    )
    assert affected(shop, [], "main") == ["shop-billing", "shop-web"]
    with pytest.raises(RoadmapError, match="unknown git revision '--output=x'"):
        affected(shop, [], "--output=x")
