"""Roadmap Agent on Railway, as code (railway-sdk).

The Railway CLI evaluates ``.railway/railway.py`` (``railway config plan`` /
``apply``), which loads this module and calls :func:`build_project`. The result
is the whole environment: the Postgres and Redis plugins and one service per
deployable, each built from its own Dockerfile with the repository root as
build context and redeployed only when its watch patterns match a change.

Besides plain tuning values, variables are references or ``preserve()``: the
database URLs come from the plugins, and each secret lives on the one service
that reads it (set with ``railway variable set``; see README.md). A service gets
only what its settings class, its start command or its pre-deploy command reads
(a test derives that set from the code). Nothing secret is written here.

Only the standard library and ``railway_sdk`` are imported: the CLI evaluates
this file with whatever ``python3`` is first on ``PATH``. The watch patterns come
from the uv workspace graph (``roadmap_dev/workspace.py``, loaded by path: it is
standard library only), the same graph ``uv run roadmap affected`` answers from.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from railway_sdk import Project, Service, github, postgres, preserve, project, redis, service

PROJECT_NAME = "roadmap-agent"
ROOT_DIRECTORY = "/"

API = "roadmap-api"
WORKER_LOGS = "roadmap-worker-logs"
WORKER_CONTENT = "roadmap-worker-content"
# The mentor chat's answers (`chat` queue): the content worker's package and image in a
# process of its own, so a question never waits behind roadmap generation.
WORKER_CHAT = "roadmap-worker-chat"
WEB = "roadmap-web"
FLOWER = "roadmap-flower"

# The port the API listens on inside Railway; public and custom domains target it.
API_PORT = 8080
API_HEALTHCHECK_PATH = "/healthz"
MIGRATE_COMMAND = "roadmap-db migrate"

# Soft shutdown (Celery) and draining (Railway) are set together: after SIGTERM a
# worker finishes or hands back its tasks within the soft-shutdown timeout, and
# Railway waits the draining time before SIGKILL. Draining leaves 30 s for the
# cold shutdown that follows (cancelling, requeueing, closing pools).
CONTENT_SOFT_SHUTDOWN_S = 30
# A chat answer is one streamed LLM call (CHAT_MAX_OUTPUT_TOKENS at most); one cut short
# is claimed again and rewritten from its start, so it gets the same time to finish.
CHAT_SOFT_SHUTDOWN_S = 30
LOGS_SOFT_SHUTDOWN_S = 10
SHUTDOWN_MARGIN_S = 30
# uvicorn's graceful shutdown (open SSE streams are closed after it).
API_GRACEFUL_SHUTDOWN_S = 20

# The start commands equal the CMD of each image (a test holds them equal). A
# Dockerfile service's start command runs in exec form, so a shell expands the
# variables; the inner command has no quotes so any argv splitter reads it alike.
API_START = (
    '/bin/sh -c "exec roadmap-api --host 0.0.0.0 --port ${PORT:-8000}'
    " --workers ${WEB_CONCURRENCY:-2} --proxy-headers"
    ' --timeout-graceful-shutdown ${UVICORN_GRACEFUL_SHUTDOWN_S:-20}"'
)
CONTENT_START = (
    '/bin/sh -c "exec celery -A roadmap_worker_content.app:celery_app worker'
    " -Q content_generation --pool prefork --concurrency ${WORKER_CONCURRENCY:-3}"
    " --max-tasks-per-child ${WORKER_MAX_TASKS_PER_CHILD:-200} --hostname content@%h"
    " --without-gossip --without-mingle"
    ' -- worker.soft_shutdown_timeout=${SOFT_SHUTDOWN_TIMEOUT_S:-20}"'
)
# The chat role of the content image: its launcher consumes only `chat`, with
# CHAT_WORKER_CONCURRENCY children (read from the settings, so nothing to expand here).
CHAT_START = "roadmap-worker-content chat --without-gossip --without-mingle"
WEB_START = (
    '/bin/sh -c "exec uvicorn roadmap_web.app:app --host 0.0.0.0 --port ${PORT:-8000}'
    " --workers ${WEB_CONCURRENCY:-1} --proxy-headers"
    ' --timeout-graceful-shutdown ${UVICORN_GRACEFUL_SHUTDOWN_S:-20}"'
)
# The web UI reaches the API over Railway's private network, never through its public domain.
WEB_API_URL = f"http://${{{{{API}.RAILWAY_PRIVATE_DOMAIN}}}}:{API_PORT}"
LOGS_START = (
    '/bin/sh -c "exec celery -A roadmap_worker_logs.app:celery_app worker -Q logs'
    " --concurrency ${LOGS_WORKER_CONCURRENCY:-2}"
    " --max-tasks-per-child ${LOGS_WORKER_MAX_TASKS_PER_CHILD:-1000} --hostname logs@%h"
    " --without-gossip --without-mingle"
    ' -- worker.soft_shutdown_timeout=${LOGS_SOFT_SHUTDOWN_TIMEOUT_S:-10}"'
)

REPO = Path(__file__).resolve().parents[2]
_WORKSPACE_GRAPH = REPO / "tools" / "roadmap-dev" / "src" / "roadmap_dev" / "workspace.py"


@dataclass(frozen=True)
class Options:
    """What differs between deployments of this project; set in ``.railway/railway.py``."""

    with_flower: bool = False
    api_custom_domains: Sequence[str] = ()
    # "owner/name" to connect the services to GitHub (autodeploys on push,
    # filtered by the watch patterns); None when CI deploys with ``railway up``.
    github_repo: str | None = None
    github_branch: str = "main"


@dataclass(frozen=True)
class Size:
    """Default replicas and per-replica limits (Railway bills usage, up to these)."""

    replicas: int
    vcpu: int
    memory_mb: int

    def deploy_limits(self) -> dict[str, Any]:
        return {
            "limitOverride": {
                "containers": {"cpu": self.vcpu, "memoryBytes": self.memory_mb * 1024 * 1024}
            }
        }


SIZES: Mapping[str, Size] = {
    API: Size(replicas=1, vcpu=1, memory_mb=1024),
    WORKER_CONTENT: Size(replicas=1, vcpu=1, memory_mb=1024),
    WORKER_CHAT: Size(replicas=1, vcpu=1, memory_mb=1024),
    WORKER_LOGS: Size(replicas=1, vcpu=1, memory_mb=512),
    # It idles under 80 MiB (bench/web); pages wait on the API, not on its CPU.
    WEB: Size(replicas=1, vcpu=1, memory_mb=256),
    FLOWER: Size(replicas=1, vcpu=1, memory_mb=256),
}


def _workspace_graph() -> ModuleType:
    name = "roadmap_railway_workspace_graph"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, _WORKSPACE_GRAPH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the workspace graph from {_WORKSPACE_GRAPH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running: its dataclasses resolve annotations there
    spec.loader.exec_module(module)
    return module


def watch_patterns(service: str, dockerfile: str) -> list[str]:
    """What redeploys ``service``: its folder, the members it needs at run time, the
    workspace pyproject.toml (``roadmap affected`` answers from the same graph), and its
    Dockerfile when that lives elsewhere. Dev-only members, tools and docs are not in it."""
    workspace = _workspace_graph().load(REPO)
    patterns: list[str] = workspace.deploy_inputs(service)
    if not PurePosixPath(dockerfile).is_relative_to(workspace.members[service].folder):
        patterns.append(dockerfile)
    return patterns


def _service_build(service: str, dockerfile: str) -> dict[str, Any]:
    return _dockerfile_build(dockerfile, watch_patterns(service, dockerfile))


def _dockerfile_build(dockerfile: str, watch: Sequence[str]) -> dict[str, Any]:
    return {"builder": "DOCKERFILE", "dockerfilePath": dockerfile, "watchPatterns": list(watch)}


def _deploy(name: str, *, draining_s: int, overlap_s: int = 0) -> dict[str, Any]:
    return {
        "restartPolicyType": "ON_FAILURE",
        "restartPolicyMaxRetries": 10,
        "drainingSeconds": draining_s,
        "overlapSeconds": overlap_s,
        **SIZES[name].deploy_limits(),
    }


def _source(options: Options) -> dict[str, Any] | None:
    if options.github_repo is None:
        return None
    # checkSuites: Railway waits for the repository's GitHub checks (the service's
    # workflow) to pass before it deploys a push.
    source: dict[str, Any] = github(
        options.github_repo, branch=options.github_branch, checkSuites=True
    )
    return source


def build_project(ctx: Any = None, options: Options | None = None) -> Project:
    """The desired state of one Railway environment (``ctx`` is the CLI's context)."""
    options = options or Options()
    db = postgres("Postgres")
    cache = redis("Redis")
    backing = {
        "APP_ENV": "production",
        "DATABASE_URL": db.env.DATABASE_URL,
        "REDIS_URL": cache.env.REDIS_URL,
    }

    api = service(
        API,
        source=_source(options),
        root=ROOT_DIRECTORY,
        build=_service_build(API, "services/api/Dockerfile"),
        start=API_START,
        # Migrations run once per deploy, before the new API starts; workers never migrate.
        preDeploy=[MIGRATE_COMMAND],
        healthcheck=API_HEALTHCHECK_PATH,
        healthcheckTimeout=120,
        replicas=SIZES[API].replicas,
        deploy=_deploy(API, draining_s=API_GRACEFUL_SHUTDOWN_S + SHUTDOWN_MARGIN_S, overlap_s=20),
        domains=[{"domain": domain, "port": API_PORT} for domain in options.api_custom_domains],
        env={
            **backing,
            "PORT": str(API_PORT),
            "WEB_CONCURRENCY": "2",
            "UVICORN_GRACEFUL_SHUTDOWN_S": str(API_GRACEFUL_SHUTDOWN_S),
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
            # Secrets are set once with `railway variable set`; only the API signs tokens.
            "JWT_SECRET_KEY": preserve(),
            # Read by the pre-deploy `roadmap-db migrate` to create the first admin.
            "ADMIN_EMAIL": preserve(),
            "ADMIN_PASSWORD": preserve(),
            # /metrics (and each worker's metrics port) answers only a scraper sending it as
            # a bearer token (unset: no metrics); a Prometheus in the project reads it as
            # ${{roadmap-api.METRICS_TOKEN}}.
            "METRICS_TOKEN": preserve(),
        },
    )

    content = service(
        WORKER_CONTENT,
        source=_source(options),
        root=ROOT_DIRECTORY,
        build=_service_build(WORKER_CONTENT, "services/worker-content/Dockerfile"),
        start=CONTENT_START,
        replicas=SIZES[WORKER_CONTENT].replicas,
        deploy=_deploy(WORKER_CONTENT, draining_s=CONTENT_SOFT_SHUTDOWN_S + SHUTDOWN_MARGIN_S),
        env={
            **backing,
            # The only service that calls the LLM holds its key (set once, like every secret).
            "OPENAI_API_KEY": preserve(),
            # Only for an OpenAI-compatible endpoint other than OpenAI's; set it here.
            "OPENAI_BASE_URL": preserve(),
            # Web search for resources (Brave Search's API; its key set once, like every
            # secret). SEARCH_BASE_URL only for another host speaking Brave's API.
            "SEARCH_PROVIDER": "brave",
            "SEARCH_API_KEY": preserve(),
            "SEARCH_BASE_URL": preserve(),
            "WORKER_CONCURRENCY": "3",
            "WORKER_MAX_TASKS_PER_CHILD": "200",
            "SOFT_SHUTDOWN_TIMEOUT_S": str(CONTENT_SOFT_SHUTDOWN_S),
            "WORKER_DB_POOL_SIZE": "2",
            "WORKER_DB_MAX_OVERFLOW": "2",
            # Its metrics port (METRICS_PORT, 9464) answers only the API's scrape token.
            "METRICS_TOKEN": api.env.METRICS_TOKEN,
        },
    )

    chat = service(
        WORKER_CHAT,
        source=_source(options),
        root=ROOT_DIRECTORY,
        # The content worker's image and watch patterns: a change to it redeploys both.
        build=_service_build(WORKER_CONTENT, "services/worker-content/Dockerfile"),
        start=CHAT_START,
        replicas=SIZES[WORKER_CHAT].replicas,
        deploy=_deploy(WORKER_CHAT, draining_s=CHAT_SOFT_SHUTDOWN_S + SHUTDOWN_MARGIN_S),
        env={
            **backing,
            # The content worker's LLM key, referenced: the secret is set once, there.
            "OPENAI_API_KEY": content.env.OPENAI_API_KEY,
            # Only for an OpenAI-compatible endpoint (as on the content worker); a reference
            # to an unset variable would read as an empty URL, so it is set here too.
            "OPENAI_BASE_URL": preserve(),
            "CHAT_WORKER_CONCURRENCY": "4",
            "SOFT_SHUTDOWN_TIMEOUT_S": str(CHAT_SOFT_SHUTDOWN_S),
            # One LLM call per answer: a child needs a connection before and after it.
            "WORKER_DB_POOL_SIZE": "2",
            "WORKER_DB_MAX_OVERFLOW": "1",
            # Its metrics port (METRICS_PORT, 9464) answers only the API's scrape token.
            "METRICS_TOKEN": api.env.METRICS_TOKEN,
        },
    )

    logs = service(
        WORKER_LOGS,
        source=_source(options),
        root=ROOT_DIRECTORY,
        build=_service_build(WORKER_LOGS, "services/worker-logs/Dockerfile"),
        start=LOGS_START,
        replicas=SIZES[WORKER_LOGS].replicas,
        deploy=_deploy(WORKER_LOGS, draining_s=LOGS_SOFT_SHUTDOWN_S + SHUTDOWN_MARGIN_S),
        env={
            **backing,
            "LOGS_WORKER_CONCURRENCY": "2",
            "LOGS_WORKER_MAX_TASKS_PER_CHILD": "1000",
            "LOGS_SOFT_SHUTDOWN_TIMEOUT_S": str(LOGS_SOFT_SHUTDOWN_S),
            "LOGS_DB_POOL_SIZE": "2",
            "LOGS_DB_MAX_OVERFLOW": "1",
            # Its metrics port (METRICS_PORT, 9465) answers only the API's scrape token.
            "METRICS_TOKEN": api.env.METRICS_TOKEN,
        },
    )

    web = service(
        WEB,
        source=_source(options),
        root=ROOT_DIRECTORY,
        build=_service_build(WEB, "services/web/Dockerfile"),
        start=WEB_START,
        healthcheck=API_HEALTHCHECK_PATH,
        healthcheckTimeout=60,
        replicas=SIZES[WEB].replicas,
        deploy=_deploy(WEB, draining_s=API_GRACEFUL_SHUTDOWN_S + SHUTDOWN_MARGIN_S, overlap_s=20),
        env={
            "APP_ENV": "production",
            "PORT": str(API_PORT),
            "WEB_CONCURRENCY": "1",
            "UVICORN_GRACEFUL_SHUTDOWN_S": str(API_GRACEFUL_SHUTDOWN_S),
            "API_URL": WEB_API_URL,
            # Served over https on Railway's domain: the session cookie is Secure.
            "COOKIE_SECURE": "true",
            # Signs the forms' cross-site tokens; set once with `railway variable set`.
            "WEB_SECRET_KEY": preserve(),
        },
    )

    resources: list[Service] = [db, cache, api, logs, content, chat, web]
    if options.with_flower:
        resources.append(_flower(options, cache.env.REDIS_URL))
    return project(PROJECT_NAME, resources=resources)


def _flower(options: Options, redis_url: dict[str, str]) -> Service:
    """Celery Flower from the all-roles image, behind HTTP basic auth."""
    return service(
        FLOWER,
        source=_source(options),
        root=ROOT_DIRECTORY,
        build=_dockerfile_build(
            "infra/railway/Dockerfile",
            ["infra/railway/Dockerfile", "infra/railway/entrypoint.sh", "pyproject.toml"],
        ),
        # No start command: the image's ENTRYPOINT picks the role from SERVICE_TYPE.
        replicas=SIZES[FLOWER].replicas,
        deploy=_deploy(FLOWER, draining_s=10),
        env={
            "SERVICE_TYPE": "flower",
            "PORT": "5555",
            "REDIS_URL": redis_url,
            # "user:password"; read by the entrypoint only, so it lives here alone.
            "FLOWER_BASIC_AUTH": preserve(),
        },
    )
