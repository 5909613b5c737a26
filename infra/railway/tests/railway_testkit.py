"""Helpers for the deployment checks: the Railway graph, the Dockerfiles, the services.

Nothing here needs a Docker engine or a Railway account: the Railway definition is
evaluated the way the Railway CLI evaluates ``.railway/railway.py``, and Dockerfiles
are read as text (see ``Dockerfile`` below).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roadmap_dev.workspace import load as load_workspace

REPO = Path(__file__).resolve().parents[3]
ENTRY = REPO / ".railway" / "railway.py"
DEFINITION = REPO / "infra" / "railway" / "railway_project.py"
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class AppService:
    """One deployable workspace member and what its image must provide."""

    name: str  # Railway service name == distribution name
    folder: str
    package: str  # import name
    entry: str  # "module:attribute" the start command loads
    settings: str  # "module:Class" read from the environment

    @property
    def dockerfile(self) -> Path:
        return REPO / self.folder / "Dockerfile"

    @property
    def entry_module(self) -> str:
        return self.entry.split(":")[0]


# The workspace graph (`roadmap affected` answers from it): a member is a deployable
# service when its pyproject.toml has [tool.roadmap.service], which names its entry
# point and settings class. Everything below follows from it.
WORKSPACE = load_workspace(REPO)
APP_SERVICES = tuple(
    AppService(m.name, m.folder, m.package, m.service.entry, m.service.settings)
    for m in WORKSPACE.services()
    if m.service is not None
)
# Railway services that run another role of a member's image: same package, Dockerfile,
# settings and watch patterns, a start command of their own. The mentor chat's answers
# (`chat` queue) run in their own processes so they never wait behind generation.
ROLE_SERVICES = {"roadmap-worker-chat": "roadmap-worker-content"}
RAILWAY_SERVICES = APP_SERVICES + tuple(
    AppService(role, m.folder, m.package, m.entry, m.settings)
    for role, member in ROLE_SERVICES.items()
    for m in APP_SERVICES
    if m.name == member
)
ALL_IN_ONE_DOCKERFILE = REPO / "infra" / "railway" / "Dockerfile"
# Members no service needs at run time (dev servers, the CLI, ...): never in an image.
DEV_ONLY_PACKAGES = tuple(
    sorted(
        WORKSPACE.members[name].package
        for name in set(WORKSPACE.members)
        - set().union(*(WORKSPACE.runtime_closure(s.name) for s in APP_SERVICES))
    )
)
# Settings classes of the commands a service runs besides its start command (Railway's
# pre-deploy command), which read the same service variables.
COMMAND_SETTINGS = {"roadmap-db migrate": "roadmap_db.settings:MigrateSettings"}


def short_name(service: str) -> str:
    """How the docs name a service: roadmap-worker-content -> content."""
    return service.removeprefix("roadmap-").removeprefix("worker-")


# --- workspace -----------------------------------------------------------------------


def workspace_members() -> dict[str, Path]:
    """Distribution name -> member folder, from the root pyproject.toml."""
    return {name: REPO / m.folder for name, m in WORKSPACE.members.items()}


def runtime_workspace_deps(member: str) -> set[str]:
    """Workspace members ``member`` needs at run time, transitively (itself excluded)."""
    return set(WORKSPACE.runtime_closure(member)) - {member}


# --- the Railway graph -------------------------------------------------------------

PRESERVE = "<preserve>"

# How the Railway CLI runs `.railway/railway.py` (its `evaluate_python`): load the file
# by path under a fixed module name, build the context from RAILWAY_IAC_CONTEXT, call
# `main(ctx)` when it takes a parameter, and print the graph as JSON.
CLI_STYLE_EVAL = r"""
import importlib.util, inspect, json, os, sys
from railway_sdk import create_railway_context
ctx = create_railway_context(json.loads(os.environ.get("RAILWAY_IAC_CONTEXT") or "{}"))
spec = importlib.util.spec_from_file_location("railway_sdk_user", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
candidate = getattr(mod, "main", None) or getattr(mod, "Railway", None) or getattr(mod, "default", None)
project = (candidate(ctx) if inspect.signature(candidate).parameters else candidate()) if callable(candidate) else candidate
if hasattr(project, "to_graph"):
    project = project.to_graph()
print(json.dumps({"partial": getattr(mod, "PARTIAL", None), "project": project}, default=str))
"""


@dataclass
class Graph:
    """The desired state the Railway CLI would plan, with variables rendered like its compiler."""

    project: dict[str, Any]
    resources: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.resources = {r["name"]: r for r in self.project["resources"]}
        self._names = {r["address"]: r["name"] for r in self.project["resources"]}

    def services(self) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if r["type"] == "service"}

    def render(self, value: dict[str, Any]) -> str:
        kind = value["type"]
        if kind == "literal":
            return str(value["value"])
        if kind == "reference":
            return f"${{{{{self._names[value['resource']]}.{value['output']}}}}}"
        if kind == "sharedReference":
            return f"${{{{shared.{value['name']}}}}}"
        if kind == "preserve":
            return PRESERVE
        raise AssertionError(f"unexpected variable kind {kind!r}")

    def variables(self, service: str) -> dict[str, str]:
        raw = self.resources[service].get("variables", {})
        return {key: self.render(value) for key, value in raw.items()}

    def raw_variables(self, service: str) -> dict[str, dict[str, Any]]:
        return dict(self.resources[service].get("variables", {}))


def evaluate_entry_like_cli(cwd: Path, context: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CLI_STYLE_EVAL, str(ENTRY)],
        cwd=cwd,
        env={**os.environ, "RAILWAY_IAC_CONTEXT": json.dumps(context)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    payload: dict[str, Any] = json.loads(out.stdout)
    return payload


# --- Dockerfiles --------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: str

    def flags_and_rest(self) -> tuple[dict[str, str], list[str]]:
        words = shlex.split(self.args)
        flags = {}
        while words and words[0].startswith("--"):
            key, _, value = words.pop(0)[2:].partition("=")
            flags[key] = value
        return flags, words


@dataclass
class Dockerfile:
    """A Dockerfile as instructions (continuations joined, comments dropped)."""

    path: Path
    instructions: list[Instruction] = field(init=False)

    def __post_init__(self) -> None:
        logical: list[str] = []
        pending = ""
        for line in self.path.read_text().splitlines():
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            logical.append(pending + stripped)
            pending = ""
        stage = "<global>"
        self.instructions = []
        for text in logical:
            keyword, _, args = text.partition(" ")
            keyword = keyword.upper()
            if keyword == "FROM":
                words = args.split()
                stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
            self.instructions.append(Instruction(keyword, args.strip(), stage))

    def stage(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.stage == name]

    @property
    def final_stage(self) -> str:
        return self.instructions[-1].stage

    def exec_form(self, keyword: str) -> list[str] | None:
        found = [i for i in self.stage(self.final_stage) if i.keyword == keyword]
        if not found:
            return None
        value: list[str] = json.loads(found[-1].args)
        return value

    def env(self, stage: str) -> dict[str, str]:
        values: dict[str, str] = {}
        for ins in self.stage(stage):
            if ins.keyword == "ENV":
                for word in shlex.split(ins.args):
                    key, _, value = word.partition("=")
                    values[key] = value
        return values

    def args(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for ins in self.instructions:
            if ins.keyword == "ARG" and "=" in ins.args:
                key, _, value = ins.args.partition("=")
                values[key] = value
        return values

    def context_copies(self, stage: str) -> list[tuple[list[str], str]]:
        """(sources, destination) of the COPY instructions that read the build context."""
        copies = []
        for ins in self.stage(stage):
            if ins.keyword != "COPY":
                continue
            flags, words = ins.flags_and_rest()
            if "from" in flags:
                continue
            copies.append((words[:-1], words[-1]))
        return copies


# --- stub commands ------------------------------------------------------------------


@dataclass
class Stubs:
    """``roadmap-api``, ``celery`` and ``roadmap-db`` replaced by scripts that record their argv."""

    bin: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            "PATH": f"{self.bin}{os.pathsep}/usr/bin:/bin",
            "STUB_LOG": str(self.log),
            "LANG": "C.UTF-8",
        }
        return {**base, **extra}


STUB_SOURCE = """#!{python}
import json, os, sys
watched = ("REMAP_SIGTERM", "CELERY_BROKER_URL", "FLOWER_BASIC_AUTH")
record = {{
    "cmd": os.path.basename(sys.argv[0]),
    "argv": sys.argv[1:],
    "env": {{k: os.environ[k] for k in watched if k in os.environ}},
}}
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
sys.exit(int(os.environ.get("STUB_EXIT_" + record["cmd"].replace("-", "_").upper(), "0")))
"""


# --- settings -----------------------------------------------------------------------


def settings_class(dotted: str) -> Any:
    """The class a "module:Class" string names."""
    import importlib

    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def readers() -> dict[str, str]:
    """Who reads variables -> their settings class: each service, then each command."""
    found = {s.name: s.settings for s in APP_SERVICES}
    found.update({command.split()[-1]: dotted for command, dotted in COMMAND_SETTINGS.items()})
    return found


def settings_variables() -> dict[str, dict[str, object]]:
    """Every environment variable the services (and their commands) read -> {reader: default}."""
    from pydantic_core import PydanticUndefined

    found: dict[str, dict[str, object]] = {}
    for reader, dotted in readers().items():
        for field_name, info in settings_class(dotted).model_fields.items():
            if info.default is not PydanticUndefined:
                default: object = info.default
            elif info.default_factory is not None:
                default = info.default_factory()
            else:
                default = None
            found.setdefault(field_name.upper(), {})[reader] = default
    return found


VARIABLE_NOTES = {
    "APP_ENV": "`production` refuses placeholder secrets",
    "DATABASE_URL": "any `postgres://`/`postgresql://` URL; the driver is chosen by the code",
    "REDIS_URL": "broker, progress streams, rate limits",
    "CELERY_BROKER_URL": "a separate Redis for the Celery queues (`redis://` or `rediss://`; defaults to `REDIS_URL`)",
    "BROKER_VISIBILITY_TIMEOUT_S": "must exceed the content tasks' hard time limit",
    "JWT_SECRET_KEY": "secret, ≥ 32 random characters in production",
    "METRICS_TOKEN": "secret; `/metrics` and the workers' metrics ports answer only this bearer token (unset: not served)",
    "METRICS_PORT": "a worker's metrics port, on the private network",
    "METRICS_HOST": "the images set `0.0.0.0`",
    "METRICS_MULTIPROCESS": "sum the samples of all the service's processes",
    "OPENAI_API_KEY": "secret; required in production unless `OPENAI_BASE_URL` is set",
    "OPENAI_BASE_URL": "an OpenAI-compatible endpoint",
    "SEARCH_PROVIDER": "`brave` or `searxng`; unset: resources items fail (no URL is invented)",
    "SEARCH_API_KEY": "secret; Brave Search's subscription token",
    "SEARCH_BASE_URL": "SearXNG's address (required for `searxng`)",
    "LINK_CHECK_ALLOW_LOOPBACK": "dev stack and tests only; refused in production",
    "LINK_CHECK_ALLOW_HOSTS": "container tests only; never set on Railway",
    "LLM_PRICES": "JSON: model → USD per million input/output tokens",
    "CORS_ORIGINS": "comma-separated origins",
    "DB_POOL_SIZE": "per process; the content and logs workers use their own knobs",
    "DB_MAX_OVERFLOW": "per process; see the connection budget",
    "WORKER_CONCURRENCY": "prefork children per replica",
    "WORKER_LLM_SLOTS": "LLM calls in flight per replica, shared by its children",
    "LOGS_WORKER_CONCURRENCY": "prefork children per replica",
    "API_URL": "the API over Railway's private network (`${{roadmap-api.RAILWAY_PRIVATE_DOMAIN}}`)",
    "API_TIMEOUT_S": "seconds the UI waits for one API call",
    "COOKIE_SECURE": "`true` in production (required there): the session cookie only travels over https",
    "WEB_SECRET_KEY": "secret, ≥ 32 characters; signs the forms' cross-site tokens (required in production)",
    "ROADMAPS_PER_PAGE": "rows of the UI's roadmap list",
    "SOFT_SHUTDOWN_TIMEOUT_S": "draining time must exceed it",
    "READYZ_REQUIRE_WORKERS": "`/readyz` also wants recent worker heartbeats",
    "RECONCILER_ENABLED": "one reconciler is active across replicas anyway (advisory lock)",
    "ADMIN_EMAIL": "the admin the pre-deploy migration creates or promotes",
    "ADMIN_PASSWORD": "secret, 12+ characters; never changed once the admin exists",
    "MIGRATE_LOCK_TIMEOUT_S": "wait for a concurrent migration (another deploy) before giving up",
}


def _format_default(value: object) -> str:
    from pydantic import SecretStr

    if isinstance(value, SecretStr):
        return "(secret)"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) and not value:
        return "(empty)"
    if isinstance(value, dict):
        return "(built in)"
    text = str(value)
    if "://" in text:
        return f"local ({text.split('://', 1)[1].split('/')[0]})"
    return f"`{text}`"


def variables_table() -> str:
    """The README's table of every variable the services read."""
    order = list(readers())
    rows = ["| variable | read by | default | note |", "|---|---|---|---|"]
    for name, per_reader in sorted(settings_variables().items()):
        names = " ".join(short_name(r) for r in order if r in per_reader)
        defaults = {_format_default(v) for v in per_reader.values()}
        if len(defaults) == 1:
            default = defaults.pop()
        else:
            default = ", ".join(
                f"{short_name(r)} {_format_default(per_reader[r])}"
                for r in order
                if r in per_reader
            )
        rows.append(f"| `{name}` | {names} | {default} | {VARIABLE_NOTES.get(name, '')} |")
    return "\n".join(rows)


README = REPO / "infra" / "railway" / "README.md"
TABLE_BEGIN, TABLE_END = "<!-- variables:begin -->", "<!-- variables:end -->"


def write_variables_table() -> None:
    text = README.read_text()
    start = text.index(TABLE_BEGIN) + len(TABLE_BEGIN)
    README.write_text(
        text[:start] + "\n" + variables_table() + "\n" + text[text.index(TABLE_END) :]
    )


# --- workflow path filters -------------------------------------------------------------

WORKFLOWS = REPO / ".github" / "workflows"
# What the deployment checks (infra.yml) read besides the workspace itself.
INFRA_INPUTS = ("infra/**", ".railway/**", ".github/**", ".ci/**", ".dockerignore")


def service_workflow(service: str) -> Path:
    """A service's pipeline is named after its folder: services/api -> api.yml."""
    return WORKFLOWS / f"{Path(WORKSPACE.members[service].folder).name}.yml"


def expected_workflow_paths() -> dict[str, list[str]]:
    """Workflow file name -> its `paths` filter, derived from the workspace graph.

    A service's workflow deploys, so it runs on what redeploys the service (`roadmap
    affected`), never on dev-only members; libs.yml runs the libraries' own tests;
    tests.yml runs the root suites and the tools' tests on anything they import; infra.yml
    runs the deployment checks, which read every service's settings.
    """

    def with_itself(name: str, patterns: list[str]) -> list[str]:
        return sorted({*patterns, f".github/workflows/{name}"})

    expected = {}
    for service in APP_SERVICES:
        name = service_workflow(service.name).name
        expected[name] = with_itself(name, WORKSPACE.deploy_inputs(service.name))
    libraries = [m.name for m in WORKSPACE.libraries()]
    expected["libs.yml"] = with_itself("libs.yml", WORKSPACE.test_inputs(libraries))
    tools = [m.name for m in WORKSPACE.tools()]
    expected["tests.yml"] = with_itself(
        "tests.yml", [*WORKSPACE.root_suite_inputs(), *WORKSPACE.test_inputs(tools)]
    )
    expected["infra.yml"] = with_itself(
        "infra.yml", [*INFRA_INPUTS, *WORKSPACE.test_inputs(WORKSPACE.root_dev)]
    )
    return expected


def with_paths(text: str, patterns: list[str]) -> str:
    """A workflow's text with every `paths:` list replaced by ``patterns``."""

    def block(match: re.Match[str]) -> str:
        indent = match.group(1)
        return f"{indent}paths:\n" + "".join(f'{indent}  - "{p}"\n' for p in patterns)

    return re.sub(r"^( +)paths:\n(?:\1  - .*\n)+", block, text, flags=re.MULTILINE)


def write_workflow_paths() -> None:
    """Rewrite the `paths:` lists of the workflows in place (everything else is kept)."""
    for name, patterns in expected_workflow_paths().items():
        path = WORKFLOWS / name
        path.write_text(with_paths(path.read_text(), patterns))


if __name__ == "__main__":
    # uv run python infra/railway/tests/railway_testkit.py  (after a settings change, or a
    # change to the workspace graph: a member added, a dependency between members)
    write_variables_table()
    write_workflow_paths()
