"""The image smoke test (`.ci/image_smoke.sh`) with `docker` stubbed: there is no engine here.

The stub records each call; whether the booted container is ready, running, or neither is
set per test. The workflows run the same script against real images and service containers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.railway.tests.railway_testkit import REPO

SCRIPT = REPO / ".ci" / "image_smoke.sh"

DOCKER_STUB = """#!{python}
import json, os, sys
args = sys.argv[1:]
record = {{"args": args}}
state_path = os.environ["STUB_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {{"probes": 0}}
code = 0
if args[0] == "exec":
    record["stdin_first_line"] = sys.stdin.readline().strip()
    state["probes"] += 1
    ready_after = int(os.environ.get("STUB_READY_AFTER", "0"))
    code = 0 if ready_after and state["probes"] >= ready_after else 1
elif args[0] == "inspect":
    print(os.environ.get("STUB_RUNNING", "true"))
elif args[0] == "logs":
    print("uvicorn: could not connect to the database")
elif args[0] == "run":
    record["env"] = {{k: os.environ.get(k) for k in ("APP_ENV", "JWT_SECRET_KEY")}}
json.dump(state, open(state_path, "w"))
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
sys.exit(code)
"""


def smoke(
    tmp_path: Path, service: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(DOCKER_STUB.format(python=sys.executable))
    docker.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    result = subprocess.run(
        ["bash", str(SCRIPT), f"{service}:test", service],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STUB_LOG": str(log),
            "STUB_STATE": str(tmp_path / "state.json"),
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def test_migrates_boots_the_cmd_and_waits_for_readiness(tmp_path: Path) -> None:
    result, calls = smoke(tmp_path, "roadmap-api", STUB_READY_AFTER="2")
    assert result.returncode == 0, result.stderr
    assert "roadmap-api is ready" in result.stdout
    migrate, boot, *rest = calls
    assert migrate["args"][:2] == ["run", "--rm"]
    assert migrate["args"][-3:] == ["roadmap-api:test", "roadmap-db", "migrate"]
    assert boot["args"][:2] == ["run", "--detach"]
    assert boot["args"][-1] == "roadmap-api:test", "the image's own CMD, no command given"
    assert "APP_ENV=production" in boot["args"]
    # A throwaway secret, passed by name: its value is in no argv and no output.
    assert "JWT_SECRET_KEY" in boot["args"]
    assert not any(a.startswith("JWT_SECRET_KEY=") for a in boot["args"])
    assert len(boot["env"]["JWT_SECRET_KEY"] or "") == 64
    assert boot["env"]["JWT_SECRET_KEY"] not in result.stdout + result.stderr
    probes = [c for c in rest if c["args"][0] == "exec"]
    assert len(probes) == 2
    assert probes[0]["args"][-4:] == ["probe", "roadmap_api.main:app", "--port", "8000"]
    assert probes[0]["stdin_first_line"].startswith('"""One deployable service')
    assert rest[-1]["args"][:2] == ["rm", "--force"], "the container is removed"


def test_a_worker_is_probed_through_its_celery_app(tmp_path: Path) -> None:
    result, calls = smoke(tmp_path, "roadmap-worker-logs", STUB_READY_AFTER="1")
    assert result.returncode == 0, result.stderr
    (probe,) = [c for c in calls if c["args"][0] == "exec"]
    assert "roadmap_worker_logs.app:celery_app" in probe["args"]


def test_a_container_that_exits_fails_with_its_log(tmp_path: Path) -> None:
    result, calls = smoke(tmp_path, "roadmap-api", STUB_RUNNING="false")
    assert result.returncode == 1
    assert "exited before it was ready" in result.stderr
    assert "could not connect to the database" in result.stderr
    assert calls[-1]["args"][:2] == ["rm", "--force"]


def test_never_ready_fails_after_the_timeout(tmp_path: Path) -> None:
    result, calls = smoke(tmp_path, "roadmap-worker-content", SMOKE_TIMEOUT_S="3")
    assert result.returncode == 1
    assert "was not ready within 3s" in result.stderr
    assert calls[-1]["args"][:2] == ["rm", "--force"]
