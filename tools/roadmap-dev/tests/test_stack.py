"""The supervisor with dummy children: output, watching, stopping, dying with the parent."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from roadmap_dev.errors import MissingToolError, StackFailedError
from roadmap_dev.stack import Child, ChildSpec, Output, Supervisor, group_alive
from roadmap_dev.testing import alive, kill_leftovers, wait_dead

PY = sys.executable


def py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


@pytest.fixture
def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, color_system=None), buffer


@pytest.fixture
def supervisor(tmp_path: Path, console: tuple[Console, io.StringIO]) -> Iterator[Supervisor]:
    sup = Supervisor(Output(console[0], tmp_path / "logs"), stop_timeout=2.0)
    yield sup
    pids = [c.pid for c in sup.children]
    sup.stop_all(timeout=1.0)
    kill_leftovers(pids)


def test_output_is_prefixed_on_the_terminal_and_kept_in_a_log_file(
    supervisor: Supervisor, console: tuple[Console, io.StringIO], tmp_path: Path
) -> None:
    child = supervisor.spawn(ChildSpec("hello", py("print('line one'); print('line two')")))
    assert child.proc.wait(timeout=10) == 0
    assert child.reader is not None
    child.reader.join(timeout=5)
    printed = console[1].getvalue().splitlines()
    assert [line for line in printed if "line" in line] == [
        "hello          │ line one",
        "hello          │ line two",
    ]
    log = (tmp_path / "logs" / "hello.log").read_text()
    assert "line one\nline two\n" in log
    assert child.last_line() == "line two"


def test_watch_returns_the_child_that_exited_on_its_own(supervisor: Supervisor) -> None:
    supervisor.spawn(ChildSpec("sleeper", ["sleep", "30"]))
    crasher = supervisor.spawn(ChildSpec("crasher", py("import sys; print('boom'); sys.exit(3)")))
    dead = supervisor.watch(threading.Event())
    assert dead is crasher
    assert dead.returncode == 3
    message = supervisor.failure_message(dead, "on its own")
    assert "crasher exited with code 3 on its own: boom" in message
    assert "crasher.log" in message


def test_watch_returns_none_when_asked_to_stop(supervisor: Supervisor) -> None:
    supervisor.spawn(ChildSpec("sleeper", ["sleep", "30"]))
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert supervisor.watch(stop) is None


def test_stop_all_escalates_to_sigkill_and_clears_the_whole_group(supervisor: Supervisor) -> None:
    # A leader that ignores SIGTERM, with a grandchild in its process group.
    stubborn = supervisor.spawn(
        ChildSpec(
            "stubborn",
            py(
                """
                import signal, subprocess, time
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                child = subprocess.Popen(["sleep", "60"])
                print(child.pid, flush=True)
                time.sleep(60)
                """
            ),
        )
    )
    polite = supervisor.spawn(ChildSpec("polite", ["sleep", "60"], stop_phase=1))
    deadline_pid = _read_pid(stubborn)
    supervisor.stop_timeout = 0.5
    supervisor.stop_all()
    assert stubborn.returncode == -signal.SIGKILL
    assert polite.returncode == -signal.SIGTERM
    assert wait_dead([deadline_pid, stubborn.pid, polite.pid], timeout=5) == []
    assert not group_alive(stubborn.pid)
    assert supervisor.children == []


def _read_pid(child: Child) -> int:
    for _ in range(200):
        for line in list(child.tail):
            if line.strip().isdigit():
                return int(line)
        threading.Event().wait(0.05)
    raise AssertionError("child never printed its grandchild's pid")


def test_stop_signal_goes_to_the_leader_only(supervisor: Supervisor, tmp_path: Path) -> None:
    # Celery's main process must drain its pool itself: pool processes get no SIGTERM from us.
    marker = tmp_path / "grandchild-got-sigterm"
    leader = supervisor.spawn(
        ChildSpec(
            "leader",
            py(
                f"""
                import os, signal, subprocess, sys, time
                code = (
                    "import signal, time, pathlib\\n"
                    "signal.signal(signal.SIGTERM, lambda *a: pathlib.Path({str(marker)!r}).touch())\\n"
                    "print('ready', flush=True)\\n"
                    "time.sleep(60)\\n"
                )
                child = subprocess.Popen([sys.executable, "-c", code])
                def stop(*_):
                    child.kill(); child.wait(); sys.exit(0)
                signal.signal(signal.SIGTERM, stop)
                time.sleep(60)
                """
            ),
        )
    )
    for _ in range(200):
        if "ready" in leader.tail:
            break
        threading.Event().wait(0.05)
    supervisor.stop_all()
    assert leader.returncode == 0
    assert not marker.exists()


def test_run_once_returns_the_finished_child(supervisor: Supervisor) -> None:
    child = supervisor.run_once(
        ChildSpec("once", py("print('admin user: created')")),
        stop=threading.Event(),
        timeout=30,
    )
    assert child.returncode == 0
    assert "admin user: created" in child.tail
    assert supervisor.children == []


def test_run_once_times_out_with_a_clear_error(supervisor: Supervisor) -> None:
    with pytest.raises(StackFailedError, match="did not finish within 1s"):
        supervisor.run_once(ChildSpec("slow", ["sleep", "30"]), stop=threading.Event(), timeout=1)
    assert supervisor.children == []


def test_wait_ready_reports_a_child_that_died_during_startup(supervisor: Supervisor) -> None:
    child = supervisor.spawn(ChildSpec("api", py("print('Address already in use'); exit(1)")))
    with pytest.raises(StackFailedError, match="api exited with code 1 during startup"):
        supervisor.wait_ready(
            child, lambda: False, stop=threading.Event(), timeout=10, what="answering"
        )


def test_a_missing_binary_is_a_one_line_error(supervisor: Supervisor) -> None:
    with pytest.raises(MissingToolError, match="no-such-binary-xyz not found"):
        supervisor.spawn(ChildSpec("ghost", ["no-such-binary-xyz"]))


def test_children_die_when_the_supervisor_is_sigkilled(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from roadmap_dev.stack import ChildSpec, Output, Supervisor
        sup = Supervisor(Output(None, None))
        child = sup.spawn(ChildSpec("sleeper", ["sleep", "60"]))
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True)
    child_pid = 0
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert alive(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_dead([child_pid], timeout=10) == []
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        kill_leftovers([child_pid] if child_pid else [])


def test_children_get_their_own_process_group(supervisor: Supervisor) -> None:
    child = supervisor.spawn(ChildSpec("sleeper", ["sleep", "30"]))
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
