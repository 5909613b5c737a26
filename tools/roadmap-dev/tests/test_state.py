"""`roadmap down`'s record: only processes matching pid *and* start time are signalled."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roadmap_dev import state
from roadmap_dev.stack import process_start_time
from roadmap_dev.testing import alive, kill_leftovers, wait_dead

Start = Callable[[list[str]], "subprocess.Popen[bytes]"]


@pytest.fixture
def procs() -> Iterator[Start]:
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    kill_leftovers([p.pid for p in started])
    for proc in started:
        proc.wait(timeout=10)


def record(
    proc: subprocess.Popen[bytes], name: str, stop_signal: int = int(signal.SIGTERM)
) -> state.ProcessRecord:
    return state.ProcessRecord(
        name=name, pid=proc.pid, started_at=process_start_time(proc.pid), stop_signal=stop_signal
    )


def test_stop_recorded_stops_the_cli_and_what_outlived_it(tmp_path: Path, procs: Start) -> None:
    cli = procs([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = procs(["sleep", "60"])
    server = procs(["sleep", "60"])
    path = tmp_path / "stack.json"
    state.write(
        path,
        state.StackRecord(
            cli=record(cli, "roadmap"),
            api_url="http://127.0.0.1:1",
            children=[record(worker, "worker")],
            servers=[record(server, "postgres", stop_signal=int(signal.SIGINT))],
        ),
    )
    assert state.running_stack(path) is not None
    stopped = state.stop_recorded(path, cli_timeout=10, timeout=5)
    assert len(stopped) == 3
    assert wait_dead([cli.pid, worker.pid, server.pid], timeout=5) == []
    assert cli.wait(5) == -signal.SIGTERM
    assert server.wait(5) == -signal.SIGINT
    assert not path.exists()


def test_a_reused_pid_is_never_signalled(tmp_path: Path, procs: Start) -> None:
    stranger = procs(["sleep", "60"])
    path = tmp_path / "stack.json"
    impostor = state.ProcessRecord(name="roadmap", pid=stranger.pid, started_at=1.0)
    state.write(path, state.StackRecord(cli=impostor, children=[impostor]))
    assert state.running_stack(path) is None
    assert state.stop_recorded(path, cli_timeout=1, timeout=1) == []
    assert alive(stranger.pid)
    assert not path.exists()


def test_unreadable_record_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text("{not json")
    assert state.read(path) is None
    assert state.stop_recorded(path) == []
