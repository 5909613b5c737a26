"""Where things live: the repo root and the `.roadmap/` data folder."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from roadmap_dev.errors import RoadmapError

DATA_DIR_ENV = "ROADMAP_DATA_DIR"


def _is_workspace_root(path: Path) -> bool:
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    members = data.get("tool", {}).get("uv", {}).get("workspace", {}).get("members", [])
    return "tools/roadmap-dev" in members


def find_repo_root(start: Path | None = None) -> Path:
    """The checkout we run in: from the working directory upwards, else where this file lives."""
    here = (start or Path.cwd()).absolute()
    for candidate in (here, *here.parents):
        if _is_workspace_root(candidate):
            return candidate
    # An editable install: src/roadmap_dev/paths.py sits four levels below the root.
    source_root = Path(__file__).resolve().parents[4]
    if _is_workspace_root(source_root):
        return source_root
    raise RoadmapError(
        "not inside a Roadmap Agent checkout; cd into the cloned repository and run `uv run roadmap …`"
    )


@dataclass(frozen=True)
class Layout:
    """Files of one dev stack inside its data folder (default `<repo>/.roadmap`)."""

    root: Path
    data_dir: Path

    @classmethod
    def resolve(cls, data_dir: Path | None = None) -> Layout:
        root = find_repo_root()
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        chosen = data_dir or (Path(env) if env else root / ".roadmap")
        return cls(root=root, data_dir=chosen.absolute())

    @property
    def version_file(self) -> Path:
        return self.data_dir / "VERSION"

    @property
    def stack_file(self) -> Path:
        return self.data_dir / "stack.json"

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials.json"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"
