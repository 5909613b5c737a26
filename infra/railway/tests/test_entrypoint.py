"""The SERVICE_TYPE entrypoint of the all-roles image, with its commands stubbed.

``roadmap-api``, ``celery``, ``roadmap-worker-content`` and ``roadmap-db`` are replaced (through PATH) by scripts
that record their argv, so each role is checked for the exact command it starts.
"""

from __future__ import annotations

import shlex
import subprocess
from types import ModuleType

import pytest

from infra.railway.tests.railway_testkit import REPO, Dockerfile, Stubs

ENTRYPOINT = REPO / "infra" / "railway" / "entrypoint.sh"
ROLES = ("api", "celery_logs", "celery_content", "celery_chat", "flower", "migrate")


def run(stubs: Stubs, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRYPOINT)], env=stubs.env(**env), capture_output=True, text=True, timeout=30
    )


def run_image_cmd(stubs: Stubs, dockerfile: Dockerfile, **env: str) -> list[str]:
    """What the per-service image's CMD runs, through the same stubs."""
    cmd = dockerfile.exec_form("CMD")
    assert cmd is not None
    before = len(stubs.calls())
    subprocess.run(cmd, env=stubs.env(**env), check=True, timeout=30)
    (call,) = stubs.calls()[before:]
    return [call["cmd"], *call["argv"]]


def test_entrypoint_is_an_executable_posix_script() -> None:
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "set -eu" in text
    assert ENTRYPOINT.stat().st_mode & 0o111
    syntax = subprocess.run(["/bin/sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


@pytest.mark.parametrize(
    ("role", "service"),
    [
        ("api", "roadmap-api"),
        ("celery_logs", "roadmap-worker-logs"),
        ("celery_content", "roadmap-worker-content"),
        ("web", "roadmap-web"),
    ],
)
def test_each_role_starts_what_its_own_image_starts(
    stubs: Stubs, dockerfiles: dict[str, Dockerfile], role: str, service: str
) -> None:
    tuning = {
        "PORT": "8123",
        "WEB_CONCURRENCY": "3",
        "WORKER_CONCURRENCY": "4",
        "LOGS_WORKER_CONCURRENCY": "5",
        "LOGS_WORKER_MAX_TASKS_PER_CHILD": "77",
        "WORKER_MAX_TASKS_PER_CHILD": "88",
        "SOFT_SHUTDOWN_TIMEOUT_S": "33",
        "LOGS_SOFT_SHUTDOWN_TIMEOUT_S": "11",
    }
    result = run(stubs, SERVICE_TYPE=role, RUN_MIGRATIONS="false", **tuning)
    assert result.returncode == 0, result.stderr
    (call,) = stubs.calls()
    started = [call["cmd"], *call["argv"]]
    assert started == run_image_cmd(stubs, dockerfiles[service], **tuning)
    if role.startswith("celery_"):
        assert call["env"]["REMAP_SIGTERM"] == "SIGQUIT"


def test_the_chat_role_starts_what_the_chat_service_starts(
    stubs: Stubs, definition: ModuleType
) -> None:
    """The chat worker has no image of its own: the role runs the Railway service's start
    command (the content image with the launcher's chat role)."""
    result = run(stubs, SERVICE_TYPE="celery_chat", CHAT_WORKER_CONCURRENCY="6")
    assert result.returncode == 0, result.stderr
    (call,) = stubs.calls()
    assert [call["cmd"], *call["argv"]] == shlex.split(definition.CHAT_START)
    assert call["argv"][0] == "chat"
    assert call["env"]["REMAP_SIGTERM"] == "SIGQUIT"


def test_api_migrates_first_by_default(stubs: Stubs) -> None:
    result = run(stubs, SERVICE_TYPE="api")
    assert result.returncode == 0, result.stderr
    calls = stubs.calls()
    # roadmap-api is the API's one launcher: it always serves with the protocol that
    # bounds slow and oversized clients (issue 14), so no start command can leave it out.
    assert [c["cmd"] for c in calls] == ["roadmap-db", "roadmap-api"]
    assert calls[0]["argv"] == ["migrate"]


def test_api_does_not_start_when_the_migration_fails(stubs: Stubs) -> None:
    result = run(stubs, SERVICE_TYPE="api", STUB_EXIT_ROADMAP_DB="3")
    assert result.returncode == 3
    assert [c["cmd"] for c in stubs.calls()] == ["roadmap-db"]


def test_run_migrations_rejects_an_unclear_value(stubs: Stubs) -> None:
    result = run(stubs, SERVICE_TYPE="api", RUN_MIGRATIONS="maybe")
    assert result.returncode == 64
    assert "RUN_MIGRATIONS" in result.stderr
    assert stubs.calls() == []


def test_workers_never_migrate(stubs: Stubs) -> None:
    for role in ("celery_logs", "celery_content", "celery_chat"):
        assert run(stubs, SERVICE_TYPE=role).returncode == 0
    assert [c["cmd"] for c in stubs.calls()] == ["celery", "celery", "roadmap-worker-content"]


def test_migrate_role_only_migrates(stubs: Stubs) -> None:
    assert run(stubs, SERVICE_TYPE="migrate").returncode == 0
    assert [(c["cmd"], c["argv"]) for c in stubs.calls()] == [("roadmap-db", ["migrate"])]


def test_flower_requires_basic_auth(stubs: Stubs) -> None:
    result = run(stubs, SERVICE_TYPE="flower", REDIS_URL="redis://cache:6379/0")
    assert result.returncode == 64
    assert "FLOWER_BASIC_AUTH" in result.stderr
    assert stubs.calls() == []


def test_flower_requires_a_broker(stubs: Stubs) -> None:
    result = run(stubs, SERVICE_TYPE="flower", FLOWER_BASIC_AUTH="ops:pw")
    assert result.returncode == 64
    assert "REDIS_URL" in result.stderr


def test_flower_keeps_credentials_off_the_command_line(stubs: Stubs) -> None:
    broker = "redis://default:broker-pw@cache:6379/0"
    result = run(
        stubs,
        SERVICE_TYPE="flower",
        FLOWER_BASIC_AUTH="ops:flower-pw",
        REDIS_URL=broker,
        PORT="7000",
    )
    assert result.returncode == 0, result.stderr
    (call,) = stubs.calls()
    assert call["cmd"] == "celery"
    assert call["argv"] == ["flower", "--address=0.0.0.0", "--port=7000"]
    assert call["env"]["CELERY_BROKER_URL"] == broker
    assert call["env"]["FLOWER_BASIC_AUTH"] == "ops:flower-pw"
    assert "pw" not in " ".join(call["argv"])


@pytest.mark.parametrize("value", ["worker", "API", "celery", "api;rm"])
def test_unknown_role_is_rejected_clearly(stubs: Stubs, value: str) -> None:
    result = run(stubs, SERVICE_TYPE=value)
    assert result.returncode == 64
    assert f"unknown SERVICE_TYPE '{value}'" in result.stderr
    for role in ROLES:
        assert role in result.stderr
    assert stubs.calls() == []


def test_missing_role_is_rejected_clearly(stubs: Stubs) -> None:
    result = run(stubs)
    assert result.returncode == 64
    assert "SERVICE_TYPE is not set" in result.stderr
    assert stubs.calls() == []


@pytest.mark.parametrize(
    ("role", "old_name", "flag"),
    [
        ("api", "UVICORN_WORKERS", "--workers"),
        ("celery_logs", "CELERY_LOGS_CONCURRENCY", "--concurrency"),
        ("celery_content", "CELERY_CONTENT_CONCURRENCY", "--concurrency"),
    ],
)
def test_the_old_layouts_variable_names_still_work(
    stubs: Stubs, role: str, old_name: str, flag: str
) -> None:
    assert run(stubs, SERVICE_TYPE=role, RUN_MIGRATIONS="false", **{old_name: "7"}).returncode == 0
    (call,) = stubs.calls()
    assert call["argv"][call["argv"].index(flag) + 1] == "7"
