"""The API contract: the committed OpenAPI snapshot, what is generated from it, and the
breaking-change rule (docs/api.md).

``uv run roadmap openapi`` rewrites ``services/api/openapi.json`` from the app, the Python
client's models (datamodel-code-generator) and the TypeScript types (openapi-typescript,
when npm is there). ``uv run roadmap openapi --check`` (CI) fails when any of them is not
what the code produces, or when a change of the snapshot in git history is breaking
without a new major version and a changelog entry for it.

Breaking (for a client written against the previous snapshot): a path, an operation, an
operationId, a component schema, a property or an enum value removed; a property or a
parameter that became required; a declared ``type`` that changed. Additions are not
breaking, and neither is a free-form object given a shape of its own (an object whose
properties are now declared, as ``LogOut.details`` in 2.1.0). No maintained Python tool
does this for OpenAPI 3.1 (oasdiff is a Go program), and the rule is small.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roadmap_dev.paths import find_repo_root

SNAPSHOT = Path("services/api/openapi.json")
CHANGELOG = Path("services/api/CHANGELOG.md")
PY_MODELS = Path("clients/python/src/roadmap_client/models.py")
TS_DIR = Path("clients/typescript")
TS_TYPES = TS_DIR / "src/schema.d.ts"
HISTORY_DEPTH = 200
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def current_document() -> dict[str, Any]:
    """The document the API serves, built from the code (no server, no settings needed)."""
    from roadmap_api.main import create_app
    from roadmap_api.settings import ApiSettings

    app = create_app(ApiSettings(app_env="test"))
    document: dict[str, Any] = app.openapi()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# -- breaking changes ------------------------------------------------------------------------


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS
    }


def _types(schema: dict[str, Any]) -> frozenset[str]:
    declared = schema["type"]
    return frozenset(declared if isinstance(declared, list) else [declared])


def _schema_changes(old: Any, new: Any, where: str) -> Iterator[str]:
    """Removed properties/enum values and newly required properties, anywhere in a schema."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            yield f"{where}: property `{name}` removed"
    added_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(added_required):
        if name in old_props:
            yield f"{where}: property `{name}` became required"
        else:
            yield f"{where}: new required property `{name}`"
    for keyword in ("enum",):
        if keyword in old and keyword in new:
            for value in old[keyword]:
                if value not in new[keyword]:
                    yield f"{where}: enum value {value!r} removed"
    if "const" in old and "const" in new and old["const"] != new["const"]:
        yield f"{where}: const {old['const']!r} changed"
    if "type" in old and "type" in new and _types(old) != _types(new):
        yield f"{where}: type {old['type']!r} changed to {new['type']!r}"
    for name in old_props:
        if name in new_props:
            yield from _schema_changes(old_props[name], new_props[name], f"{where}.{name}")
    for keyword in ("items", "additionalProperties", "contentSchema"):
        yield from _schema_changes(old.get(keyword), new.get(keyword), f"{where}[{keyword}]")
    for keyword in ("anyOf", "oneOf", "allOf"):
        old_list, new_list = old.get(keyword), new.get(keyword)
        if isinstance(old_list, list) and isinstance(new_list, list):
            for i, (a, b) in enumerate(zip(old_list, new_list, strict=False)):
                yield from _schema_changes(a, b, f"{where}[{keyword}{i}]")


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found: list[str] = []
    old_ops, new_ops = _operations(old), _operations(new)
    old_paths, new_paths = set(old.get("paths", {})), set(new.get("paths", {}))
    found += [f"path {p} removed" for p in sorted(old_paths - new_paths)]
    for key, operation in old_ops.items():
        path, method = key
        label = f"{method.upper()} {path}"
        if key not in new_ops:
            if path in new_paths:
                found.append(f"operation {label} removed")
            continue
        new_op = new_ops[key]
        if operation.get("operationId") != new_op.get("operationId"):
            found.append(
                f"{label}: operationId {operation.get('operationId')!r} → "
                f"{new_op.get('operationId')!r}"
            )
        old_params = {(p.get("in"), p.get("name")): p for p in operation.get("parameters", [])}
        for param in new_op.get("parameters", []):
            previous = old_params.get((param.get("in"), param.get("name")))
            if param.get("required") and not (previous and previous.get("required")):
                found.append(f"{label}: parameter `{param.get('name')}` became required")
        old_body = operation.get("requestBody", {}).get("content", {})
        new_body = new_op.get("requestBody", {}).get("content", {})
        for media, content in old_body.items():
            if media in new_body:
                found += _schema_changes(
                    content.get("schema"), new_body[media].get("schema"), f"{label} body"
                )
    old_schemas = old.get("components", {}).get("schemas", {})
    new_schemas = new.get("components", {}).get("schemas", {})
    for name, schema in old_schemas.items():
        if name not in new_schemas:
            found.append(f"schema {name} removed")
        else:
            found += _schema_changes(schema, new_schemas[name], f"schema {name}")
    return found


_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def major(version: str) -> tuple[int, int]:
    """The part of a version that must grow for a breaking change (semver; 0.x: minor)."""
    match = _SEMVER.match(version)
    if match is None:
        raise ValueError(f"not a semantic version: {version!r}")
    first, second = int(match.group(1)), int(match.group(2))
    return (first, 0) if first > 0 else (0, second)


def changelog_entry(changelog: str, version: str) -> str | None:
    """The text of the changelog's ``## <version>`` section, if there is one."""
    match = re.search(rf"^## {re.escape(version)}\b.*?$(.*?)(?=^## |\Z)", changelog, re.M | re.S)
    return match.group(1) if match else None


def judge(old: dict[str, Any], new: dict[str, Any], changelog: str) -> list[str]:
    """Problems with going from ``old`` to ``new`` (empty: fine)."""
    changes = breaking_changes(old, new)
    if not changes:
        return []
    old_version, new_version = old["info"]["version"], new["info"]["version"]
    problems = []
    if major(new_version) <= major(old_version):
        problems.append(
            f"breaking change without a new major version ({old_version} → {new_version})"
        )
    entry = changelog_entry(changelog, new_version)
    if entry is None or "breaking" not in entry.lower():
        problems.append(f"{CHANGELOG} has no `## {new_version}` section naming the breaking change")
    return [*problems, *(f"  - {c}" for c in changes)] if problems else []


# -- git history -------------------------------------------------------------------------


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    result = subprocess.run(  # noqa: S603 - git with our own arguments
        [git, "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def history_problems(root: Path) -> list[str]:
    """Judge every change of the committed snapshot (newest ``HISTORY_DEPTH``) against the
    version before it, with the changelog as of that change."""
    log = _git(root, "log", f"-n{HISTORY_DEPTH}", "--format=%H", "--", str(SNAPSHOT))
    if log is None:
        return []
    problems = []
    for commit in log.split():
        parent_doc = _git(root, "show", f"{commit}^:{SNAPSHOT}")
        doc = _git(root, "show", f"{commit}:{SNAPSHOT}")
        if parent_doc is None or doc is None:
            continue  # the snapshot's first commit, or a deletion
        changelog = _git(root, "show", f"{commit}:{CHANGELOG}") or ""
        found = judge(json.loads(parent_doc), json.loads(doc), changelog)
        if found:
            problems.append(f"commit {commit[:12]}:")
            problems += found
    return problems


# -- generated files ---------------------------------------------------------------------


def python_models(snapshot: Path) -> str:
    """The client's models, as datamodel-code-generator writes them from ``snapshot``."""
    command = [
        sys.executable, "-m", "datamodel_code_generator",
        "--input", str(snapshot), "--input-file-type", "openapi",
        "--output-model-type", "pydantic_v2.BaseModel",
        "--target-python-version", "3.11",
        "--use-annotated", "--use-standard-collections", "--use-union-operator",
        "--field-constraints", "--use-double-quotes", "--enum-field-as-literal", "all",
        "--collapse-root-models", "--use-schema-description",
        "--disable-timestamp", "--allow-extra-fields",
        "--custom-file-header", MODELS_HEADER,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"datamodel-code-generator failed:\n{result.stderr[-3000:]}")
    # Formatted as the repository formats it, so `ruff format --check` agrees.
    ruff = Path(sys.executable).with_name("ruff")
    formatted = subprocess.run(  # noqa: S603 - the workspace's own ruff
        [str(ruff), "format", "--stdin-filename", str(PY_MODELS), "-"],
        input=result.stdout, capture_output=True, text=True, check=False, cwd=find_repo_root(),
    )  # fmt: skip
    if formatted.returncode != 0:
        raise RuntimeError(f"ruff format failed:\n{formatted.stderr[-3000:]}")
    return formatted.stdout


MODELS_HEADER = (
    '"""Models of the Roadmap Agent API, generated from services/api/openapi.json by\n'
    "datamodel-code-generator: do not edit; run `uv run roadmap openapi` after an API change.\n"
    '"""\n\n# ruff: noqa'
)


def typescript_types(root: Path) -> str | None:
    """The TypeScript types as openapi-typescript writes them (``None``: npm not set up)."""
    binary = root / TS_DIR / "node_modules/.bin/openapi-typescript"
    if not binary.exists():
        return None
    result = subprocess.run(  # noqa: S603 - the project's own pinned tool
        # Defaults do not make a field required: request bodies may leave them out.
        [str(binary), str(root / SNAPSHOT), "--default-non-nullable", "false"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"openapi-typescript failed:\n{result.stderr[-3000:]}")
    return result.stdout


@dataclass
class Outcome:
    written: list[Path]
    problems: list[str]
    notes: list[str]


def sync(*, check: bool, root: Path | None = None, require_typescript: bool = True) -> Outcome:
    """Write (or, with ``check``, compare) the snapshot and what is generated from it.

    Without ``require_typescript`` the TypeScript types are checked only where npm has
    installed the generator (the tests; CI's own step installs it and requires it)."""
    root = root or find_repo_root()
    outcome = Outcome([], [], [])
    snapshot = root / SNAPSHOT
    fresh = render(current_document())
    before = snapshot.read_text(encoding="utf-8") if snapshot.exists() else None
    if before is not None and before != fresh:
        changelog = _read(root / CHANGELOG) or ""
        problems = judge(json.loads(before), json.loads(fresh), changelog)
        outcome.problems += problems
    _update(root, SNAPSHOT, before, fresh, check, outcome)
    if not snapshot.exists():
        return outcome
    # Generated from the committed snapshot (a stale snapshot is reported above).
    models = python_models(snapshot)
    _update(root, PY_MODELS, _read(root / PY_MODELS), models, check, outcome)
    ts = typescript_types(root)
    if ts is None:
        note = f"{TS_TYPES} not checked: run `npm install --no-package-lock` in {TS_DIR} first"
        if check and require_typescript:
            outcome.problems.append(note)
        else:
            outcome.notes.append(note)
    else:
        _update(root, TS_TYPES, _read(root / TS_TYPES), ts, check, outcome)
    if check:
        outcome.problems += history_problems(root)
    return outcome


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _update(
    root: Path, relative: Path, before: str | None, fresh: str, check: bool, outcome: Outcome
) -> None:
    if before == fresh:
        return
    if check:
        outcome.problems.append(
            f"{relative} is not what the code produces: run `uv run roadmap openapi` and commit it"
        )
        return
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fresh, encoding="utf-8")
    outcome.written.append(relative)
