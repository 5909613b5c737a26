"""Servers never outlive the Python process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STARTER = """
import sys, time
from pathlib import Path
from roadmap_devservers.embedded import EmbeddedPostgres, EmbeddedRedis
root = Path(sys.argv[1])
pg = EmbeddedPostgres(root / "pg")
pg.start()
rd = EmbeddedRedis(root / "redis")
rd.start()
print(pg.pid, rd.pid, flush=True)
sys.stdin.readline()  # the test looks at the servers first
if sys.argv[2] == "hang":
    time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}  # a zombie has exited; only its parent's reaping is left


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if not _gone(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("ending", ["exit", "hang"])
def test_servers_end_with_their_parent(server_dir: Path, ending: str) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(server_dir), ending],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        assert starter.stdin is not None
        pg_pid, redis_pid = (int(word) for word in starter.stdout.readline().split())
        watched = [pg_pid, redis_pid, *_children(pg_pid)]
        assert len(watched) > 2  # postmaster children too (checkpointer, walwriter, ...)
        starter.stdin.write("go\n")
        starter.stdin.close()
        if ending == "hang":
            os.kill(starter.pid, signal.SIGKILL)  # no atexit: only PR_SET_PDEATHSIG can help
        assert starter.wait(timeout=30) in (0, -signal.SIGKILL)
        assert _wait_gone(watched) == []
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        if starter.stdout is not None:
            starter.stdout.close()


def test_server_started_from_a_short_lived_thread_survives_it(server_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from roadmap_devservers.embedded import EmbeddedRedis

    server = EmbeddedRedis(server_dir)
    with ThreadPoolExecutor(max_workers=1) as pool:  # its thread exits at the end of the block
        pool.submit(server.start).result()
    try:
        time.sleep(0.3)
        assert server.running
    finally:
        server.stop()
