"""`roadmap affected`: which deployable services a change redeploys.

The answer comes from the workspace graph (:mod:`roadmap_dev.workspace`): a service is
affected when a changed path lies in its own folder, in the folder of a member it needs
at run time (transitively), or is the workspace's root ``pyproject.toml``. Dev-only
members, tools, docs, tests and benchmarks redeploy nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from roadmap_dev.errors import RoadmapError
from roadmap_dev.workspace import Workspace, WorkspaceError, load


def _run_git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise RoadmapError("`--since` needs git, which is not installed")
    return subprocess.run(  # noqa: S603 - fixed git subcommands; the ref is one argument
        [git, *args], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )


def _git(root: Path, *args: str) -> str:
    result = _run_git(root, *args)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RoadmapError(f"git {args[0]} failed: {detail}")
    return result.stdout


def changed_since(root: Path, ref: str) -> list[str]:
    """Paths changed between ``ref`` and the working tree, as this branch changed them.

    Compared with the merge base of ``ref`` and HEAD (like ``git diff ref...``), so work
    that landed on ``ref`` after this branch forked is not counted; uncommitted and
    untracked files are.
    """
    known = _run_git(
        root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
    )
    if known.returncode != 0:
        raise RoadmapError(
            f"unknown git revision {ref!r}: name a branch, tag or commit of this repository "
            "(a shallow clone may need `git fetch` first)"
        )
    base = _git(root, "merge-base", "--end-of-options", ref, "HEAD").strip()
    tracked = _git(root, "diff", "--name-only", "--no-renames", "--relative", base, "--")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard")
    return sorted({line for line in (tracked + untracked).splitlines() if line})


def _relative(root: Path, given: str) -> str:
    path = Path(given)
    if not path.is_absolute():
        return given
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        raise RoadmapError(f"{given} is outside the repository ({root})") from None


def affected(root: Path, paths: Sequence[str], since: str | None) -> list[str]:
    """The services a change redeploys; ``paths`` may be files, folders or glob patterns."""
    if since is not None and paths:
        raise RoadmapError("give changed paths or --since REF, not both")
    if since is None and not paths:
        raise RoadmapError(
            "name the changed paths (e.g. `roadmap affected libs/db`) or --since REF"
        )
    try:
        workspace: Workspace = load(root)
        changed = changed_since(root, since) if since is not None else list(paths)
        return workspace.affected_services(_relative(root, p) for p in changed)
    except WorkspaceError as exc:
        raise RoadmapError(str(exc)) from exc
