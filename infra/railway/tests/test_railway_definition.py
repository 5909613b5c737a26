"""The Railway definition, evaluated as the Railway CLI evaluates `.railway/railway.py`."""

from __future__ import annotations

import math
import os
import re
import shlex
from collections import Counter
from types import ModuleType
from typing import Any

import pytest

from infra.railway.tests.railway_testkit import (
    APP_SERVICES,
    COMMAND_SETTINGS,
    DEV_ONLY_PACKAGES,
    PRESERVE,
    RAILWAY_SERVICES,
    REPO,
    ROLE_SERVICES,
    WORKSPACE,
    AppService,
    Dockerfile,
    Graph,
    settings_class,
    settings_variables,
)
from roadmap_api import serve
from roadmap_core.contracts import CHAT_QUEUE, CONTENT_QUEUE, LOGS_QUEUE
from roadmap_worker_content import main as content_launcher

BACKING = {"DATABASE_URL": "${{Postgres.DATABASE_URL}}", "REDIS_URL": "${{Redis.REDIS_URL}}"}
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|AUTH|CREDENTIAL)", re.IGNORECASE)
SECRET_SHAPES = (
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),  # OpenAI-style keys
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # credentials inside a URL
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)


def _entropy_bits_per_char(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_secret(value: str) -> bool:
    if any(shape.search(value) for shape in SECRET_SHAPES):
        return True
    # Long random-looking tokens (hex/base64 secrets) mix letters and digits and have a
    # high per-character entropy; names, paths and flags do not.
    return any(
        re.search(r"\d", token)
        and re.search(r"[A-Za-z]", token)
        and _entropy_bits_per_char(token) > 3.5
        for token in re.findall(r"[A-Za-z0-9+=_-]{24,}", value)
    )


def test_the_secret_detector_catches_what_it_should() -> None:
    assert looks_secret("sk-proj-abcdefgh12345678")
    assert looks_secret("postgresql://postgres:hunter2@db:5432/railway")
    assert looks_secret("3f9c2a7e1b8d4c6f0a5e9b2d7c1f8a3e6b4d0c9f")
    assert not looks_secret("production")
    assert not looks_secret("services/worker-content/Dockerfile")
    assert not looks_secret("roadmap_worker_content.app:celery_app --max-tasks-per-child 200")
    assert not looks_secret("${{Postgres.DATABASE_URL}}")


def test_the_cli_evaluates_the_entry_and_gets_the_whole_project(
    cli_payload: dict[str, Any], graph: Graph
) -> None:
    assert cli_payload["partial"] is None, "one file owns the whole environment"
    assert graph.project["name"] == "roadmap-agent"
    # Every deployable member of the workspace, under its distribution name, and nothing else.
    # plus the services that run another role of a member's image (ROLE_SERVICES).
    assert set(graph.resources) == {"Postgres", "Redis", *(s.name for s in RAILWAY_SERVICES)}
    assert graph.resources["Postgres"]["engine"] == "postgres"
    assert graph.resources["Redis"]["engine"] == "redis"


def test_flower_is_optional_and_protected(graph: Graph, graph_with_flower: Graph) -> None:
    assert "roadmap-flower" not in graph.resources
    flower = graph_with_flower.resources["roadmap-flower"]
    assert flower["build"]["dockerfilePath"] == "infra/railway/Dockerfile"
    assert "startCommand" not in flower.get("deploy", {}), "the image entrypoint picks the role"
    variables = graph_with_flower.variables("roadmap-flower")
    assert variables["SERVICE_TYPE"] == "flower"
    assert variables["REDIS_URL"] == BACKING["REDIS_URL"]
    # Its password lives on Flower alone: no other service reads it.
    assert variables["FLOWER_BASIC_AUTH"] == PRESERVE
    for service in graph_with_flower.services():
        if service != "roadmap-flower":
            assert "FLOWER_BASIC_AUTH" not in graph_with_flower.variables(service), service


def test_every_service_builds_its_own_dockerfile_from_the_repo_root(
    graph: Graph, app_service: AppService
) -> None:
    node = graph.resources[app_service.name]
    assert node["source"]["rootDirectory"] == "/"
    assert node["build"]["builder"] == "DOCKERFILE"
    dockerfile = node["build"]["dockerfilePath"]
    assert dockerfile == f"{app_service.folder}/Dockerfile"
    assert (REPO / dockerfile).is_file()


def test_watch_patterns_are_what_roadmap_affected_answers(
    graph: Graph, app_service: AppService
) -> None:
    """The service, the members it needs at run time and the workspace pyproject.toml:
    the same graph `roadmap affected` reads, so a change redeploys exactly what it lists."""
    patterns = graph.resources[app_service.name]["build"]["watchPatterns"]
    assert patterns == WORKSPACE.deploy_inputs(app_service.name)
    assert f"{app_service.folder}/**" in patterns
    assert "pyproject.toml" in patterns
    for package in DEV_ONLY_PACKAGES:  # dev servers, the CLI: never redeploy production
        member = next(m for m in WORKSPACE.members.values() if m.package == package)
        assert not any(p.startswith(member.folder + "/") for p in patterns), member.folder
    for other in APP_SERVICES:
        if other is not app_service:
            assert f"{other.folder}/**" not in patterns


def test_start_command_is_the_images_cmd(
    graph: Graph, dockerfiles: dict[str, Dockerfile], app_service: AppService
) -> None:
    start = graph.resources[app_service.name]["deploy"]["startCommand"]
    cmd = dockerfiles[app_service.name].exec_form("CMD")
    assert shlex.split(start) == cmd
    # Railway runs a Dockerfile service's start command in exec form: a shell must expand it.
    assert cmd is not None
    assert cmd[:2] == ["/bin/sh", "-c"]
    assert cmd[2].startswith("exec ")
    program = cmd[2].split()[1]
    # The API starts through its launcher, which always serves its entry (with its limits).
    assert app_service.entry in (serve.APP if program == "roadmap-api" else cmd[2])


def test_workers_consume_their_own_queue(graph: Graph) -> None:
    def queue_of(service: str) -> str:
        words = shlex.split(shlex.split(graph.resources[service]["deploy"]["startCommand"])[2])
        return words[words.index("-Q") + 1]

    assert queue_of("roadmap-worker-content") == CONTENT_QUEUE
    assert queue_of("roadmap-worker-logs") == LOGS_QUEUE
    content = graph.resources["roadmap-worker-content"]["deploy"]["startCommand"]
    assert "--pool prefork" in content


def test_the_chat_worker_runs_the_content_image_on_the_chat_queue(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same image, same redeploy triggers as the content worker; its launcher's chat role
    consumes only `chat`, with CHAT_WORKER_CONCURRENCY prefork children."""
    for role, member in ROLE_SERVICES.items():
        assert graph.resources[role]["build"] == graph.resources[member]["build"]
    start = shlex.split(graph.resources["roadmap-worker-chat"]["deploy"]["startCommand"])
    assert start[:2] == ["roadmap-worker-content", "chat"]
    # What that launcher hands Celery (worker_main recorded instead of run).
    from roadmap_worker_content.app import celery_app

    worker_args: list[list[str]] = []
    monkeypatch.setattr(celery_app, "worker_main", worker_args.append)
    content_launcher.main(start[1:])
    (argv,) = worker_args
    assert argv[argv.index("--queues") + 1] == CHAT_QUEUE
    assert argv[argv.index("--pool") + 1] == "prefork"
    assert "content_generation" not in argv


def test_only_the_api_migrates_and_it_does_so_before_deploying(graph: Graph) -> None:
    api = graph.resources["roadmap-api"]["deploy"]
    assert api["preDeployCommand"] == ["roadmap-db migrate"]
    for name in ("roadmap-worker-content", "roadmap-worker-chat", "roadmap-worker-logs"):
        deploy = graph.resources[name]["deploy"]
        assert "preDeployCommand" not in deploy
        assert "migrate" not in deploy["startCommand"]


def test_the_api_is_health_checked_and_reachable(
    graph: Graph, graph_with_flower: Graph, dockerfiles: dict[str, Dockerfile]
) -> None:
    api = graph.resources["roadmap-api"]
    assert api["deploy"]["healthcheckPath"] == "/healthz"
    healthcheck = [i for i in dockerfiles["roadmap-api"].instructions if i.keyword == "HEALTHCHECK"]
    assert len(healthcheck) == 1
    assert "/healthz" in healthcheck[0].args
    port = graph.variables("roadmap-api")["PORT"]
    domains = graph_with_flower.resources["roadmap-api"]["networking"]["customDomains"]
    assert domains == {"api.example.com": {"port": int(port)}}
    for worker in ("roadmap-worker-content", "roadmap-worker-chat", "roadmap-worker-logs"):
        assert "healthcheckPath" not in graph.resources[worker]["deploy"]
        assert "networking" not in graph.resources[worker]


def _start_default(start: str, variable: str) -> str:
    match = re.search(r"\$\{" + re.escape(variable) + r":-([^}]*)\}", start)
    assert match, f"{variable} not in start command"
    return match.group(1)


@pytest.mark.parametrize(
    ("service", "soft_shutdown_var"),
    [
        ("roadmap-worker-content", "SOFT_SHUTDOWN_TIMEOUT_S"),
        ("roadmap-worker-logs", "LOGS_SOFT_SHUTDOWN_TIMEOUT_S"),
    ],
)
def test_draining_outlasts_the_soft_shutdown(
    graph: Graph, service: str, soft_shutdown_var: str
) -> None:
    deploy = graph.resources[service]["deploy"]
    start = deploy["startCommand"]
    assert f"worker.soft_shutdown_timeout=${{{soft_shutdown_var}:-" in start
    soft = float(
        graph.variables(service).get(soft_shutdown_var, _start_default(start, soft_shutdown_var))
    )
    # Draining is a number (Railway rejects a string), with room for the cold shutdown after.
    assert isinstance(deploy["drainingSeconds"], int)
    assert deploy["drainingSeconds"] >= soft + 10


def test_the_chat_worker_drains_longer_than_its_soft_shutdown(graph: Graph) -> None:
    """Its launcher passes no shutdown flag: the Celery app reads SOFT_SHUTDOWN_TIMEOUT_S."""
    deploy = graph.resources["roadmap-worker-chat"]["deploy"]
    settings = settings_class("roadmap_worker_content.settings:ContentWorkerSettings")
    soft = float(
        graph.variables("roadmap-worker-chat").get(
            "SOFT_SHUTDOWN_TIMEOUT_S", settings.model_fields["soft_shutdown_timeout_s"].default
        )
    )
    assert isinstance(deploy["drainingSeconds"], int)
    assert deploy["drainingSeconds"] >= soft + 10


def test_the_api_drains_longer_than_uvicorn_waits(graph: Graph) -> None:
    deploy = graph.resources["roadmap-api"]["deploy"]
    graceful = float(graph.variables("roadmap-api")["UVICORN_GRACEFUL_SHUTDOWN_S"])
    assert deploy["drainingSeconds"] >= graceful + 10


def test_restart_policy_and_sizes(graph: Graph, railway_service: AppService) -> None:
    deploy = graph.resources[railway_service.name]["deploy"]
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert deploy["restartPolicyMaxRetries"] >= 1
    assert deploy["numReplicas"] >= 1
    limits = deploy["limitOverride"]["containers"]
    assert limits["cpu"] >= 1
    assert limits["memoryBytes"] >= 256 * 1024 * 1024


def test_backing_services_are_references(graph: Graph, railway_service: AppService) -> None:
    variables = graph.variables(railway_service.name)
    reads = {name.upper() for name in settings_class(railway_service.settings).model_fields}
    for key, rendered in BACKING.items():
        if key in reads:  # the web UI reads neither: it reaches everything through the API
            assert variables[key] == rendered
        else:
            assert key not in variables
    assert variables["APP_ENV"] == "production"


def test_each_secret_lives_on_the_service_that_reads_it(graph: Graph) -> None:
    api = graph.variables("roadmap-api")
    for key in ("JWT_SECRET_KEY", "ADMIN_EMAIL", "ADMIN_PASSWORD", "METRICS_TOKEN"):
        assert api[key] == PRESERVE
    assert "OPENAI_API_KEY" not in api, "the API never calls the LLM"
    content = graph.variables("roadmap-worker-content")
    assert content["OPENAI_API_KEY"] == PRESERVE
    assert "JWT_SECRET_KEY" not in content
    # The chat worker calls the same LLM with the same key, set once on the content worker.
    chat = graph.variables("roadmap-worker-chat")
    assert chat["OPENAI_API_KEY"] == "${{roadmap-worker-content.OPENAI_API_KEY}}"
    assert "JWT_SECRET_KEY" not in chat
    logs = graph.variables("roadmap-worker-logs")
    assert not {"OPENAI_API_KEY", "JWT_SECRET_KEY"} & set(logs), (
        "the logs worker needs no secret but the scrape token"
    )
    # Each worker serves its metrics on the private network behind the same scrape token.
    for worker in (content, chat, logs):
        assert worker["METRICS_TOKEN"] == "${{roadmap-api.METRICS_TOKEN}}"


def test_every_reference_resolves(graph: Graph, graph_with_flower: Graph) -> None:
    for g in (graph, graph_with_flower):
        addresses = {r["address"]: r for r in g.project["resources"]}
        for name in g.services():
            for key, value in g.raw_variables(name).items():
                if value["type"] != "reference":
                    continue
                target = addresses[value["resource"]]
                if target["type"] == "database":
                    assert value["output"] == target["output"], (name, key)
                else:
                    # A variable referenced on another service must be declared there.
                    assert value["output"] in target.get("variables", {}), (name, key)


def test_no_value_looks_like_a_secret(graph: Graph, graph_with_flower: Graph) -> None:
    for g in (graph, graph_with_flower):
        for name, node in g.resources.items():
            for key, value in g.raw_variables(name).items():
                if SECRET_NAME.search(key):
                    assert value["type"] in {"reference", "sharedReference", "preserve"}, (
                        name,
                        key,
                    )
                if value["type"] == "literal":
                    assert not looks_secret(value["value"]), (name, key)
            for text in _strings(node):
                assert not looks_secret(text), (name, text)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _fields(dotted: str) -> set[str]:
    return {name.upper() for name in settings_class(dotted).model_fields}


def _secret_fields(dotted: str) -> set[str]:
    from pydantic import SecretStr

    return {
        name.upper()
        for name, info in settings_class(dotted).model_fields.items()
        if SecretStr in getattr(info.annotation, "__args__", (info.annotation,))
    }


def _commands(graph: Graph, service: str) -> list[str]:
    deploy = graph.resources[service].get("deploy", {})
    return [deploy.get("startCommand", ""), *deploy.get("preDeployCommand", [])]


def readable_variables(graph: Graph, app_service: AppService) -> set[str]:
    """What a service reads, derived from the code: its settings class, the variables its
    start command expands, and the settings of the commands it runs before deploying."""
    readable = _fields(app_service.settings)
    for command in _commands(graph, app_service.name):
        readable |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", command))
        if command in COMMAND_SETTINGS:
            readable |= _fields(COMMAND_SETTINGS[command])
    return readable


def test_each_service_gets_only_variables_it_reads(
    graph: Graph, railway_service: AppService
) -> None:
    """Least privilege, and no typos: a variable nothing reads is a leak or a silent default."""
    declared = set(graph.variables(railway_service.name))
    unread = declared - readable_variables(graph, railway_service)
    assert not unread, f"{railway_service.name} is given {sorted(unread)}, which it never reads"


def test_each_service_gets_every_secret_it_reads(graph: Graph, railway_service: AppService) -> None:
    # A role reads its member's settings but uses only part of them: the chat worker
    # answers with the LLM alone (resources search runs on `content_generation`).
    unused = {"roadmap-worker-chat": {"SEARCH_API_KEY"}}.get(railway_service.name, set())
    secrets = _secret_fields(railway_service.settings) - unused
    for command in _commands(graph, railway_service.name):
        if command in COMMAND_SETTINGS:
            secrets |= _secret_fields(COMMAND_SETTINGS[command])
    variables = graph.variables(railway_service.name)
    # Set once on this service, or a reference to the one service that holds it.
    declared = {k for k, v in variables.items() if v == PRESERVE or v.startswith("${{")}
    missing = sorted(secrets - declared)
    assert not missing, f"declare {missing} on {railway_service.name} (preserve() or a reference)"


def test_each_service_starts_in_production_with_what_it_is_given(
    graph: Graph, railway_service: AppService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its settings (and its pre-deploy command's) validate with the declared variables
    alone, secrets and references filled in: nothing it needs is left out."""
    readable = settings_variables()
    for key in [k for k in os.environ if k.upper() in readable]:
        monkeypatch.delenv(key)
    for key, value in graph.variables(railway_service.name).items():
        if value == PRESERVE or value.startswith("${{"):
            value = {
                "DATABASE_URL": "postgresql://u:p@db.internal:5432/railway",
                "REDIS_URL": "redis://default:p@cache.internal:6379",
            }.get(key, "s3cr3t-" + "x" * 40)
        monkeypatch.setenv(key, value)
    settings = settings_class(railway_service.settings)()
    assert settings.is_production
    for command in _commands(graph, railway_service.name):
        if command in COMMAND_SETTINGS:
            settings_class(COMMAND_SETTINGS[command])()


@pytest.mark.parametrize(
    ("service", "variable", "field"),
    [
        ("roadmap-worker-content", "WORKER_CONCURRENCY", "worker_concurrency"),
        ("roadmap-worker-content", "WORKER_MAX_TASKS_PER_CHILD", "worker_max_tasks_per_child"),
        ("roadmap-worker-content", "SOFT_SHUTDOWN_TIMEOUT_S", "soft_shutdown_timeout_s"),
        ("roadmap-worker-logs", "LOGS_WORKER_CONCURRENCY", "logs_worker_concurrency"),
    ],
)
def test_start_command_defaults_match_the_settings(
    graph: Graph, service: str, variable: str, field: str
) -> None:
    """The worker's Celery flags and its settings (used for budgets) agree on defaults."""
    app_service = next(s for s in APP_SERVICES if s.name == service)
    start = graph.resources[service]["deploy"]["startCommand"]
    default = settings_class(app_service.settings).model_fields[field].default
    assert float(_start_default(start, variable)) == float(default)


POSTGRES_MAX_CONNECTIONS = 100  # PostgreSQL's default, which Railway's Postgres image keeps
RESERVED = 3 + 5  # superuser_reserved_connections + psql/migrate/ops headroom


def connection_budget(graph: Graph) -> dict[str, int]:
    """Postgres connections each service may open at its configured size (see README)."""

    def n(service: str, key: str, default: int) -> int:
        return int(graph.variables(service).get(key, default))

    def replicas(service: str) -> int:
        return int(graph.resources[service]["deploy"]["numReplicas"])

    api = (
        replicas("roadmap-api")
        * n("roadmap-api", "WEB_CONCURRENCY", 2)
        * (n("roadmap-api", "DB_POOL_SIZE", 10) + n("roadmap-api", "DB_MAX_OVERFLOW", 10))
    )
    content = replicas("roadmap-worker-content") * (
        n("roadmap-worker-content", "WORKER_CONCURRENCY", 3)
        * (
            n("roadmap-worker-content", "WORKER_DB_POOL_SIZE", 2)
            + n("roadmap-worker-content", "WORKER_DB_MAX_OVERFLOW", 2)
        )
        + 2  # the reconciler's lock connection and its working connection
    )
    # The chat worker runs no reconciler (it only runs beside `content_generation`).
    chat = replicas("roadmap-worker-chat") * (
        n("roadmap-worker-chat", "CHAT_WORKER_CONCURRENCY", 4)
        * (
            n("roadmap-worker-chat", "WORKER_DB_POOL_SIZE", 9)
            + n("roadmap-worker-chat", "WORKER_DB_MAX_OVERFLOW", 2)
        )
    )
    logs = (
        replicas("roadmap-worker-logs")
        * n("roadmap-worker-logs", "LOGS_WORKER_CONCURRENCY", 2)
        * (
            n("roadmap-worker-logs", "LOGS_DB_POOL_SIZE", 2)
            + n("roadmap-worker-logs", "LOGS_DB_MAX_OVERFLOW", 1)
        )
    )
    return {
        "roadmap-api": api,
        "roadmap-worker-content": content,
        "roadmap-worker-chat": chat,
        "roadmap-worker-logs": logs,
    }


def test_connection_budget_fits_the_database(graph: Graph) -> None:
    budget = connection_budget(graph)
    # During a deploy the old and the new deployment of one service overlap; the
    # largest service counted twice must still fit.
    worst = sum(budget.values()) + max(budget.values())
    assert worst <= POSTGRES_MAX_CONNECTIONS - RESERVED, budget


def test_readme_states_the_same_budget(graph: Graph) -> None:
    readme = (REPO / "infra" / "railway" / "README.md").read_text()
    budget = connection_budget(graph)
    for service, connections in budget.items():
        assert re.search(rf"`{service}`[^\n]*\| \*\*{connections}\*\*", readme), service
    total = sum(budget.values())
    assert f"**{total}**" in readme


def test_the_entry_only_chooses_options(
    definition: ModuleType, cli_payload: dict[str, Any]
) -> None:
    """`.railway/railway.py` with its shipped options is the definition's default project."""
    assert cli_payload["project"] == definition.build_project(None, definition.Options()).to_graph()


def test_readme_lists_every_variable_the_services_read() -> None:
    readme = (REPO / "infra" / "railway" / "README.md").read_text()
    section = readme[
        readme.index("<!-- variables:begin -->") : readme.index("<!-- variables:end -->")
    ]
    missing = [name for name in settings_variables() if f"| `{name}` |" not in section]
    assert not missing, (
        f"{missing} missing from infra/railway/README.md; regenerate its table with"
        " `uv run python infra/railway/tests/railway_testkit.py`"
    )


def test_readme_lists_every_variable_the_definition_sets(graph_with_flower: Graph) -> None:
    readme = (REPO / "infra" / "railway" / "README.md").read_text()
    section = readme[
        readme.index("### Set by the definition") : readme.index("### Everything else")
    ]
    declared = {
        key for name in graph_with_flower.services() for key in graph_with_flower.variables(name)
    }
    missing = sorted(key for key in declared if f"`{key}`" not in section)
    assert not missing, f"add to the README's 'Set by the definition' table: {missing}"
