"""What the container tests check on a running stack, shared by both layouts."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import PurePosixPath

import httpx

from infra.containers.railway_stack import API, CONTENT, FLOWER, LOGS, RailwayStack
from roadmap_client import RoadmapClient, concepts_of

MEMBERS = ("roadmap_api", "roadmap_worker_content", "roadmap_worker_logs")
NEVER_DEPLOYED = ("roadmap_devservers", "roadmap_dev", "pytest", "mypy", "ruff")
PID1 = {API: "roadmap-api", CONTENT: "celery", LOGS: "celery", FLOWER: "celery"}
FIND = (
    "import importlib.util, json, sys; "
    "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))"
)


def roadmap_completes_with_execution_logs(stack: RailwayStack) -> None:
    with RoadmapClient(stack.api_url, timeout=30) as api:
        api.login(stack.secrets["ADMIN_EMAIL"], stack.secrets["ADMIN_PASSWORD"])
        job = api.create_roadmap(
            goal="Learn SQL in containers", level="beginner", weekly_hours=4, weeks=4
        )
        roadmap = api.wait(job.id, max_wait=180)
        assert roadmap.status == "completed", stack.logs(CONTENT)
        assert roadmap.framework is not None
        assert concepts_of(roadmap)
        # Execution logs travel on their own queue and are written in batches: they may
        # land a moment after the roadmap completes, so wait for them as a reader would.
        assert logs_arrive(api, job.id, within_s=60), stack.logs(LOGS)
    # Both worker types are alive, as the API's readiness sees them.
    reply = httpx.get(f"{stack.api_url}/readyz", timeout=10)
    assert reply.status_code == 200, reply.text


def logs_arrive(api: RoadmapClient, job_id: uuid.UUID | str, *, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while api.count_logs(job_id) == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def modules_found(stack: RailwayStack, service: str) -> set[str]:
    """Which of our members (and of what is never deployed) the service's image can import."""
    code, out = stack.exec(service, ["python", "-c", FIND, *MEMBERS, *NEVER_DEPLOYED])
    assert code == 0, out
    found: dict[str, bool] = json.loads(out.strip().splitlines()[-1])
    return {name for name, present in found.items() if present}


def runs_as_non_root_with_the_server_as_pid1(stack: RailwayStack, service: str) -> None:
    code, out = stack.exec(
        service, ["sh", "-c", "grep '^Uid:' /proc/1/status; tr '\\0' ' ' </proc/1/cmdline"]
    )
    assert code == 0, out
    uid_line, cmdline = out.strip().splitlines()[-2:]
    uids = uid_line.split()[1:]
    assert uids, out
    assert all(uid != "0" for uid in uids), f"{service}: PID 1 runs as {uids}"
    # PID 1 is the server itself (exec form, no shell in between), so Railway's SIGTERM
    # reaches it directly: `python /app/.venv/bin/roadmap-api …` or `/app/.venv/bin/celery …`.
    programs = [PurePosixPath(word).name for word in cmdline.split()[:2]]
    assert PID1[service] in programs, f"{service}: PID 1 is {cmdline!r}"


def published_ports_on_loopback_only(stack: RailwayStack) -> None:
    for name, container in stack.containers.items():
        container.reload()
        for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", f"{name} publishes {binding}"


def stops_on_sigterm_within_draining_time(stack: RailwayStack, service: str) -> None:
    stopped = stack.stop(service)
    assert not stopped.killed, (
        f"{service} exited {stopped.exit_code} (SIGKILL) {stopped.seconds:.1f} s after SIGTERM"
        f" (draining time {stopped.draining_s} s):\n"
        f"{stack.logs(service)}"
    )
    assert stopped.exit_code == 0, f"{service} exited {stopped.exit_code}:\n{stack.logs(service)}"
