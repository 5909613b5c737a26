"""The Dockerfiles, read as text and linted (there is no Docker engine here)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.railway.tests.railway_testkit import (
    APP_SERVICES,
    REPO,
    VENV_BIN,
    AppService,
    Dockerfile,
    runtime_workspace_deps,
    workspace_members,
)


def test_hadolint_is_clean(dockerfiles: dict[str, Dockerfile]) -> None:
    paths = [str(d.path) for d in dockerfiles.values()]
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), *paths], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def _uv_runs(dockerfile: Dockerfile) -> list[list[str]]:
    """Each `uv ...` command of the build stage, as argv."""
    commands = []
    for ins in dockerfile.stage("build"):
        if ins.keyword == "RUN":
            for part in ins.args.split("&&"):
                words = shlex.split(part)
                if words and words[0] == "uv":
                    commands.append(words)
    return commands


def _member_folders(names: set[str]) -> set[str]:
    members = workspace_members()
    return {members[n].relative_to(REPO).as_posix() for n in names}


def test_build_copies_only_the_member_and_its_libraries(
    dockerfiles: dict[str, Dockerfile], app_service: AppService
) -> None:
    dockerfile = dockerfiles[app_service.name]
    copied = [src for sources, _ in dockerfile.context_copies("build") for src in sources]
    code = {src.removesuffix("/src") for src in copied if src.endswith("/src")}
    expected = _member_folders({app_service.name, *runtime_workspace_deps(app_service.name)})
    assert code == expected
    assert not {"libs/devservers", "tools/roadmap-dev"} & code
    # Locking reads the whole workspace's metadata (pyproject.toml files), nothing more.
    metadata = {src for src in copied if src.endswith("pyproject.toml")}
    every_member = {
        f"{folder}/pyproject.toml" for folder in _member_folders(set(workspace_members()))
    }
    assert metadata == {"pyproject.toml", *every_member}
    assert set(copied) == metadata | {f"{folder}/src" for folder in code}


def test_dependencies_install_before_the_code(
    dockerfiles: dict[str, Dockerfile], app_service: AppService
) -> None:
    dockerfile = dockerfiles[app_service.name]
    order = [
        ("copy-src" if any(s.endswith("/src") for s in i.flags_and_rest()[1][:-1]) else "copy")
        if i.keyword == "COPY"
        else i.keyword
        for i in dockerfile.stage("build")
        if i.keyword in {"COPY", "RUN"}
    ]
    first_code = order.index("copy-src")
    assert "RUN" in order[:first_code], "the dependency layer comes before any source"
    lock, deps_sync, final_sync = _uv_runs(dockerfile)
    assert lock == ["uv", "lock"]
    for sync in (deps_sync, final_sync):
        assert sync[:2] == ["uv", "sync"]
        assert "--no-dev" in sync
        assert sync[sync.index("--package") + 1] == app_service.name
        # uv.lock is not in git: nothing may demand a lockfile the checkout lacks.
        assert "--frozen" not in sync
    assert "--no-install-workspace" in deps_sync
    assert "--no-editable" in final_sync


def test_runtime_stage_is_slim_and_unprivileged(
    dockerfiles: dict[str, Dockerfile], app_service: AppService
) -> None:
    dockerfile = dockerfiles[app_service.name]
    final = dockerfile.final_stage
    assert final != "build"
    assert dockerfile.context_copies(final) == [], "only the virtualenv comes into the runtime"
    copies = [i.flags_and_rest() for i in dockerfile.stage(final) if i.keyword == "COPY"]
    assert copies == [({"from": "build"}, ["/app/.venv", "/app/.venv"])]
    users = [i.args for i in dockerfile.stage(final) if i.keyword == "USER"]
    assert len(users) == 1
    uid = users[0].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    env = dockerfile.env(final)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/app/.venv/bin:")


def test_workers_turn_sigterm_into_a_soft_shutdown(dockerfiles: dict[str, Dockerfile]) -> None:
    for name in ("roadmap-worker-content", "roadmap-worker-logs"):
        dockerfile = dockerfiles[name]
        assert dockerfile.env(dockerfile.final_stage)["REMAP_SIGTERM"] == "SIGQUIT"
        cmd = dockerfile.exec_form("CMD")
        assert cmd is not None
        assert "worker.soft_shutdown_timeout=" in cmd[2]


def test_api_image_has_a_healthcheck_on_healthz(dockerfiles: dict[str, Dockerfile]) -> None:
    dockerfile = dockerfiles["roadmap-api"]
    (check,) = [i for i in dockerfile.stage(dockerfile.final_stage) if i.keyword == "HEALTHCHECK"]
    assert "/healthz" in check.args
    assert "PORT" in check.args


def test_all_in_one_image_holds_every_service_and_its_entrypoint(
    dockerfiles: dict[str, Dockerfile],
) -> None:
    dockerfile = dockerfiles["all-in-one"]
    copied = [src for sources, _ in dockerfile.context_copies("build") for src in sources]
    code = {src.removesuffix("/src") for src in copied if src.endswith("/src")}
    services = {s.name for s in APP_SERVICES}
    libs = set().union(*(runtime_workspace_deps(s) for s in services))
    assert code == _member_folders(services | libs)
    (_, _, final_sync) = _uv_runs(dockerfile)[:3]
    assert {final_sync[i + 1] for i, w in enumerate(final_sync) if w == "--package"} == services
    assert dockerfile.context_copies(dockerfile.final_stage) == [
        (["infra/railway/entrypoint.sh"], "/app/entrypoint.sh")
    ]
    assert dockerfile.exec_form("ENTRYPOINT") == ["/app/entrypoint.sh"]


def test_dockerignore_keeps_secrets_and_machine_state_out() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "uv.lock", ".env", "**/.env", "**/__pycache__"} <= patterns
    # The images COPY these; ignoring them would break the build.
    for needed in ("libs", "services", "infra", "pyproject.toml"):
        assert needed not in patterns


STUB_APP = """
import json, os
from celery import Celery, signals

celery_app = Celery("stub", broker="memory://")


@signals.celeryd_after_setup.connect
def report(sender, instance, conf, **_):
    print(json.dumps({
        "hostname": instance.hostname,
        "concurrency": instance.concurrency,
        "max_tasks_per_child": instance.max_tasks_per_child,
        "pool": instance.pool_cls.__module__,
        "queues": sorted(instance.app.amqp.queues.consume_from),
        "soft_shutdown_timeout": conf.worker_soft_shutdown_timeout,
    }), flush=True)
    os._exit(0)
"""


@pytest.mark.parametrize(
    ("service", "env", "expected"),
    [
        (
            "roadmap-worker-content",
            {"WORKER_CONCURRENCY": "3", "SOFT_SHUTDOWN_TIMEOUT_S": "45"},
            {
                "concurrency": 3,
                "max_tasks_per_child": 200,
                "pool": "celery.concurrency.prefork",
                "queues": ["content_generation"],
                "soft_shutdown_timeout": 45.0,
            },
        ),
        (
            "roadmap-worker-logs",
            {"LOGS_WORKER_CONCURRENCY": "1"},
            {
                "concurrency": 1,
                "max_tasks_per_child": 1000,
                "pool": "celery.concurrency.prefork",
                "queues": ["logs"],
                "soft_shutdown_timeout": 10.0,
            },
        ),
    ],
)
def test_worker_cmd_is_parsed_by_celery_as_intended(
    dockerfiles: dict[str, Dockerfile],
    tmp_path: Path,
    service: str,
    env: dict[str, str],
    expected: dict[str, object],
) -> None:
    """Run the image's exact CMD through the real Celery CLI against a stand-in app.

    The stand-in (same module path, in-memory broker) reports how the worker was
    configured and exits before consuming anything.
    """
    app_service = next(s for s in APP_SERVICES if s.name == service)
    package = tmp_path / app_service.package
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(STUB_APP)
    cmd = dockerfiles[service].exec_form("CMD")
    assert cmd is not None
    result = subprocess.run(
        cmd,
        env={
            "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
            "PYTHONPATH": str(tmp_path),  # shadows the installed package
            "HOME": str(tmp_path),
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["hostname"].split("@")[0] in {"content", "logs"}
    for key, value in expected.items():
        assert report[key] == value, key
    assert sys.executable  # the venv whose celery ran is this interpreter's


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
        return port


def test_api_cmd_serves_healthz_and_stops_on_sigterm(
    dockerfiles: dict[str, Dockerfile], tmp_path: Path
) -> None:
    """The image's CMD and HEALTHCHECK, run as-is on this machine (no database needed)."""
    dockerfile = dockerfiles["roadmap-api"]
    cmd = dockerfile.exec_form("CMD")
    assert cmd is not None
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PORT": str(_free_port()),
        "WEB_CONCURRENCY": "1",
        "UVICORN_GRACEFUL_SHUTDOWN_S": "5",
        # /healthz needs neither; closed ports keep the run off any shared server.
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "REDIS_URL": "redis://127.0.0.1:9/0",
    }
    (healthcheck,) = [
        i for i in dockerfile.stage(dockerfile.final_stage) if i.keyword == "HEALTHCHECK"
    ]
    check_cmd = json.loads(healthcheck.args[healthcheck.args.index("CMD") + 3 :].strip())
    server = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            probe = subprocess.run(check_cmd, env=env, capture_output=True, timeout=10)
            if probe.returncode == 0:
                break
            assert server.poll() is None, server.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the API did not answer /healthz"
            time.sleep(0.2)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=30)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.returncode in {0, -signal.SIGTERM}, log[-2000:]
        assert "Application shutdown complete" in log
        # Well inside the draining time Railway gives it (see the definition).
        assert time.monotonic() - started < 10
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
