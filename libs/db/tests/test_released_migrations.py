"""A migration that has landed on main is never edited or removed: a schema change is a new one.

Databases in production have run the released files; editing one would leave them with a
schema the code no longer describes. "Released" means present at the merge base of main
and HEAD: a migration someone else landed on main after this branch forked is not this
branch's to check, and a new migration on this branch is free to change until it lands.
``RELEASED_MIGRATIONS_REF`` names another reference (CI sets it to the commit before a
push to main).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import roadmap_db

VERSIONS = Path(roadmap_db.__file__).resolve().parent / "migrations" / "versions"
REF_ENV = "RELEASED_MIGRATIONS_REF"
DEFAULT_REFS = ("main", "origin/main")
_NO_COMMIT = "0" * 40  # GitHub's `before` for a branch's first push


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    assert git is not None, "git is needed to check released migrations"
    result = subprocess.run(
        [git, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result


def _released_ref(root: Path) -> str:
    wanted = os.environ.get(REF_ENV, "").strip()
    candidates = (wanted,) if wanted and wanted != _NO_COMMIT else DEFAULT_REFS
    for ref in candidates:
        if _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).stdout:
            return ref
    raise AssertionError(
        f"none of {', '.join(candidates)} exists in this clone, so released migrations cannot be"
        f" checked: fetch main (`git fetch origin main`, or `fetch-depth: 0` in a workflow) or"
        f" set {REF_ENV}"
    )


def edited_released_migrations(root: Path, versions: Path, ref: str) -> list[str]:
    """Migration files present at merge-base(ref, HEAD) that the working tree changed or removed."""
    base = _git(root, "merge-base", ref, "HEAD").stdout.strip()
    folder = versions.relative_to(root).as_posix()
    listed = _git(root, "ls-tree", "--name-only", f"{base}:{folder}", check=False)
    if listed.returncode != 0:
        return []  # no migrations were released yet
    problems = []
    for name in sorted(listed.stdout.split()):
        if not name.endswith(".py"):
            continue
        released = _git(root, "show", f"{base}:{folder}/{name}").stdout
        current = versions / name
        if not current.is_file():
            problems.append(f"{folder}/{name} was released and is gone")
        elif current.read_text() != released:
            problems.append(f"{folder}/{name} was released and has changed")
    return problems


def _repo_root() -> Path | None:
    found = _git(VERSIONS, "rev-parse", "--show-toplevel", check=False)
    return Path(found.stdout.strip()) if found.returncode == 0 else None


def test_released_migrations_are_unchanged() -> None:
    root = _repo_root()
    if root is None:
        # A source archive without history has nothing to compare against; CI always has git.
        assert not os.environ.get("CI"), "CI must run from a git checkout"
        pytest.skip("not a git checkout")
    ref = _released_ref(root)
    problems = edited_released_migrations(root, VERSIONS, ref)
    assert not problems, (
        "; ".join(problems) + f" (compared with {ref}). Restore them and put the change in a"
        " new migration: databases in production already ran the released ones."
    )


# --- the check itself, on a scratch repository ----------------------------------------


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_first.py").write_text("revision = '0001'\n")
    _commit(tmp_path, "first migration")
    _git(tmp_path, "checkout", "-qb", "feature")
    return tmp_path


def test_check_flags_an_edited_or_removed_released_migration(repo: Path) -> None:
    versions = repo / "versions"
    (versions / "0001_first.py").write_text("revision = '0001'  # edited\n")
    assert edited_released_migrations(repo, versions, "main") == [
        "versions/0001_first.py was released and has changed"
    ]
    (versions / "0001_first.py").unlink()
    assert edited_released_migrations(repo, versions, "main") == [
        "versions/0001_first.py was released and is gone"
    ]


def test_check_lets_new_migrations_change_until_they_land(repo: Path) -> None:
    versions = repo / "versions"
    (versions / "0002_mine.py").write_text("revision = '0002'\n")
    _commit(repo, "my migration")
    (versions / "0002_mine.py").write_text("revision = '0002'  # still mine to edit\n")
    assert edited_released_migrations(repo, versions, "main") == []


def test_check_ignores_migrations_landed_on_main_after_this_branch(repo: Path) -> None:
    versions = repo / "versions"
    _git(repo, "checkout", "-q", "main")
    (versions / "0002_theirs.py").write_text("revision = '0002'\n")
    _commit(repo, "someone else's migration")
    _git(repo, "checkout", "-q", "feature")
    # Not in this branch yet, and not this branch's to keep: rebasing brings it in.
    assert not (versions / "0002_theirs.py").exists()
    assert edited_released_migrations(repo, versions, "main") == []
