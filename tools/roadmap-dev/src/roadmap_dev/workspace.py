"""The uv workspace as a graph: its members, what each needs, and which are deployed.

A member's *runtime* dependencies are the workspace members named in its
``[project] dependencies`` (what ``uv sync --package <member> --no-dev`` installs and what
its image holds); its *dev* dependencies are the members named in its dependency groups
(what its tests import besides). A member is a deployable service when its
``pyproject.toml`` has a ``[tool.roadmap.service]`` table: that is the one human
decision; everything else (what a change redeploys, Railway watch patterns, workflow
path filters, which services CI installs and starts) is derived here.

Standard library only: the Railway definition (``infra/railway/railway_project.py``) and
the CI service check (``.ci/service_check.py``) load this file by path, with whatever
Python 3.11+ runs them and without the workspace installed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Files at the repository root that every member's build reads: the workspace's own
# pyproject.toml holds the member list and `exclude-newer`, which decide every version
# each image resolves.
ROOT_INPUTS = ("pyproject.toml",)
# Folders outside any member whose tests run against the whole workspace (the root
# project's dev group names what they import).
ROOT_SUITE = "tests"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class WorkspaceError(ValueError):
    """The workspace definition cannot be read; the message names the file."""


def normalise(name: str) -> str:
    """PEP 503 form of a distribution name (what uv compares)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement.strip())
    if match is None:
        raise WorkspaceError(f"cannot read the requirement {requirement!r}")
    return normalise(match.group(0))


@dataclass(frozen=True)
class ServiceSpec:
    """``[tool.roadmap.service]`` of a deployable member."""

    entry: str  # "module:attribute" its start command serves (an ASGI app or a Celery app)
    settings: str  # "module:Class": the settings class it reads from the environment

    @property
    def entry_module(self) -> str:
        return self.entry.partition(":")[0]


@dataclass(frozen=True)
class Member:
    name: str  # normalised distribution name
    folder: str  # POSIX path relative to the repository root
    runtime: frozenset[str]  # workspace members in [project] dependencies
    dev: frozenset[str]  # workspace members in its dependency groups
    service: ServiceSpec | None

    @property
    def package(self) -> str:
        """Import name: uv_build's default module name for the distribution."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Workspace:
    root: Path
    members: Mapping[str, Member]
    root_dev: frozenset[str]  # members the root project's dev group installs

    # --- the graph ------------------------------------------------------------------

    def runtime_closure(self, name: str) -> frozenset[str]:
        """``name`` and every member it needs at run time, transitively."""
        return self._closure([name], dev=False)

    def test_closure(self, names: Iterable[str]) -> frozenset[str]:
        """The members the tests of ``names`` import: theirs and their dev groups' runtime needs."""
        return self._closure(names, dev=True)

    def _closure(self, names: Iterable[str], *, dev: bool) -> frozenset[str]:
        todo = [normalise(n) for n in names]
        for name in todo:
            self._member(name)
        if dev:
            todo += [d for n in list(todo) for d in self.members[n].dev]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(self._member(name).runtime)
        return frozenset(seen)

    def _member(self, name: str) -> Member:
        try:
            return self.members[name]
        except KeyError:
            raise WorkspaceError(f"{name!r} is not a member of the workspace") from None

    # --- roles ----------------------------------------------------------------------

    def services(self) -> list[Member]:
        """Deployable members, by name."""
        return sorted((m for m in self.members.values() if m.service), key=lambda m: m.name)

    def libraries(self) -> list[Member]:
        """Members another member needs at run time, that are not deployed themselves."""
        needed = {d for m in self.members.values() for d in m.runtime}
        return sorted(
            (m for m in self.members.values() if m.name in needed and not m.service),
            key=lambda m: m.name,
        )

    def tools(self) -> list[Member]:
        """Members that are neither deployed nor needed by another member (dev tooling)."""
        others = {m.name for m in (*self.services(), *self.libraries())}
        return sorted(
            (m for m in self.members.values() if m.name not in others), key=lambda m: m.name
        )

    # --- paths ----------------------------------------------------------------------

    def folders(self, names: Iterable[str]) -> list[str]:
        return sorted(self.members[n].folder for n in names)

    def deploy_inputs(self, service: str) -> list[str]:
        """Path patterns whose change must rebuild and redeploy ``service``."""
        return [f"{f}/**" for f in self.folders(self.runtime_closure(service))] + list(ROOT_INPUTS)

    def test_inputs(self, names: Iterable[str]) -> list[str]:
        """Path patterns whose change can change the outcome of the tests of ``names``."""
        return [f"{f}/**" for f in self.folders(self.test_closure(names))] + list(ROOT_INPUTS)

    def root_suite_inputs(self) -> list[str]:
        """Path patterns the root suites (``tests/``) depend on."""
        return [f"{ROOT_SUITE}/**", *self.test_inputs(self.root_dev)]

    def affected_services(self, patterns: Iterable[str]) -> list[str]:
        """Names of the services a change to any of ``patterns`` redeploys, sorted."""
        parsed = [_pattern_parts(p) for p in patterns]
        hit = []
        for service in self.services():
            inputs = [_pattern_parts(p) for p in self.deploy_inputs(service.name)]
            if any(_overlap(change, given) for change in parsed for given in inputs):
                hit.append(service.name)
        return hit


def _pattern_parts(pattern: str) -> list[str]:
    path = PurePosixPath(pattern.strip())
    parts = [p for p in path.parts if p not in {"", "."}]
    if path.is_absolute() or ".." in parts:
        raise WorkspaceError(f"{pattern!r} is not a path inside the repository")
    return parts or ["**"]


def _overlap(change: list[str], given: list[str]) -> bool:
    """Whether some file can match both path patterns (``*``/``?``/``[]`` within one part,
    ``**`` across parts; a pattern that names a folder covers everything under it)."""
    from fnmatch import fnmatchcase

    def walk(a: list[str], b: list[str]) -> bool:
        if not a or not b:
            # One names a folder the other reaches into, or both end together.
            return True
        if a[0] == "**":
            return walk(a[1:], b) or walk(a, b[1:])
        if b[0] == "**":
            return walk(a, b[1:]) or walk(a[1:], b)
        literal_a = not any(c in a[0] for c in "*?[")
        literal_b = not any(c in b[0] for c in "*?[")
        if literal_a and literal_b:
            same = a[0] == b[0]
        elif literal_a:
            same = fnmatchcase(a[0], b[0])
        elif literal_b:
            same = fnmatchcase(b[0], a[0])
        else:
            same = True  # two wildcards: some name matches both (good enough for paths)
        return same and walk(a[1:], b[1:])

    return walk(change, given)


# --- loading ----------------------------------------------------------------------------


def _read(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkspaceError(f"cannot read {path}: {exc}") from exc


def _table(data: Mapping[str, object], *keys: str) -> dict[str, object]:
    for key in keys:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise WorkspaceError(f"[{'.'.join(keys)}] must be a table")
        data = value
    return dict(data)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WorkspaceError(f"{where} must be a list of strings")
    return list(value)


def _group_requirements(groups: Mapping[str, object], where: Path) -> list[str]:
    found: list[str] = []
    for name, entries in groups.items():
        if not isinstance(entries, list):
            raise WorkspaceError(f"{where}: dependency group {name!r} must be a list")
        # {include-group = "..."} entries pull in another group, which is listed anyway.
        found += [e for e in entries if isinstance(e, str)]
    return found


def _service_spec(data: Mapping[str, object], where: Path) -> ServiceSpec | None:
    table = _table(data, "tool", "roadmap").get("service")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise WorkspaceError(f"{where}: [tool.roadmap.service] must be a table")
    values = {}
    for key in ("entry", "settings"):
        value = table.get(key)
        if not isinstance(value, str) or ":" not in value:
            raise WorkspaceError(f"{where}: [tool.roadmap.service] {key} must be 'module:name'")
        values[key] = value
    return ServiceSpec(entry=values["entry"], settings=values["settings"])


def _member_folders(root: Path, data: Mapping[str, object]) -> list[Path]:
    workspace = _table(data, "tool", "uv", "workspace")
    members = _strings(workspace.get("members", []), "[tool.uv.workspace] members")
    excluded = _strings(workspace.get("exclude", []), "[tool.uv.workspace] exclude")
    skip = {p.resolve() for pattern in excluded for p in root.glob(pattern)}
    folders: list[Path] = []
    for pattern in members:
        for folder in sorted(root.glob(pattern)):
            if folder.resolve() not in skip and (folder / "pyproject.toml").is_file():
                folders.append(folder)
    return folders


def load(root: Path) -> Workspace:
    """Read the workspace rooted at ``root`` (the folder of its root ``pyproject.toml``)."""
    root = root.resolve()
    root_data = _read(root / "pyproject.toml")
    raw: dict[str, tuple[Path, dict[str, object]]] = {}
    for folder in _member_folders(root, root_data):
        data = _read(folder / "pyproject.toml")
        name = _table(data, "project").get("name")
        if not isinstance(name, str):
            raise WorkspaceError(f"{folder / 'pyproject.toml'}: [project] name is missing")
        raw[normalise(name)] = (folder, data)

    def members_in(requirements: Iterable[str]) -> frozenset[str]:
        return frozenset(n for n in map(requirement_name, requirements) if n in raw)

    members = {}
    for name, (folder, data) in raw.items():
        where = folder / "pyproject.toml"
        runtime = members_in(
            _strings(_table(data, "project").get("dependencies", []), f"{where} dependencies")
        )
        dev = members_in(_group_requirements(_table(data, "dependency-groups"), where))
        members[name] = Member(
            name=name,
            folder=folder.relative_to(root).as_posix(),
            runtime=runtime - {name},
            dev=dev - {name},
            service=_service_spec(data, where),
        )
    root_dev = members_in(_group_requirements(_table(root_data, "dependency-groups"), root))
    return Workspace(root=root, members=members, root_dev=root_dev)
