"""A small process supervisor for the dev stack.

Each child runs in its own session (so a terminal Ctrl-C reaches only us and we stop
children in a chosen order), gets PR_SET_PDEATHSIG (so it dies even if we are SIGKILLed),
and has its output prefixed and coloured on the terminal and copied to a log file.
Stopping sends the child's stop signal to the group leader only (Celery's main process
must drain its own pool), then SIGKILL to the whole group after a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil
from rich.console import Console
from rich.text import Text

from roadmap_dev.errors import MissingToolError, StackFailedError

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved before any fork: nothing may be loaded between fork and exec.
_PRCTL = _load_prctl()


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel send `sig` to the child when this process dies.

    The kernel ties it to the spawning *thread*: spawn from the main thread.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()
    signum = int(sig)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    return preexec


def process_start_time(pid: int) -> float | None:
    """Kernel start time of `pid`, to tell our process from a later one that reused its pid."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def same_process_alive(pid: int, started_at: float | None) -> bool:
    """`pid` is alive (not a zombie) and started at `started_at` (so not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = float(proc.create_time())
    except psutil.Error:
        return False
    return started_at is None or abs(created - started_at) < 1.0


def group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in process group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies count for killpg; an init that is slow to reap them must not make us wait.
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child. Lower `stop_phase` stops first; a phase stops in parallel."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    color: str | None = None
    stop_phase: int = 0
    stop_signal: signal.Signals = signal.SIGTERM


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    started_at: float | None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    reader: threading.Thread | None = None
    stopping: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def last_line(self) -> str:
        for line in reversed(self.tail):
            if line.strip():
                return line.strip()
        return "(no output)"


class Output:
    """Where children's lines go: the terminal (prefixed, coloured) and a log file per child."""

    def __init__(self, console: Console | None, log_dir: Path | None, width: int = 14) -> None:
        self.console = console
        self.log_dir = log_dir
        self.width = width
        self._colors: dict[str, str] = {}
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def color_for(self, spec: ChildSpec) -> str:
        if spec.name not in self._colors:
            self._colors[spec.name] = spec.color or PALETTE[len(self._colors) % len(PALETTE)]
        return self._colors[spec.name]

    def log_path(self, name: str) -> Path | None:
        return self.log_dir / f"{name}.log" if self.log_dir else None

    def open_log(self, name: str) -> IO[bytes] | None:
        path = self.log_path(name)
        if path is None:
            return None
        handle = path.open("ab")
        handle.write(f"--- started {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        return handle

    def line(self, spec: ChildSpec, text: str) -> None:
        if self.console is None:
            return
        prefix = Text(f"{spec.name:<{self.width}} │ ", style=self.color_for(spec))
        self.console.print(prefix + Text.from_ansi(text), soft_wrap=True, highlight=False)


class Supervisor:
    """Starts children, watches them, and stops them all (also on failure)."""

    def __init__(
        self,
        output: Output,
        *,
        stop_timeout: float = 10.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.output = output
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self._on_change = on_change
        self._lock = threading.Lock()

    def spawn(self, spec: ChildSpec) -> Child:
        env = dict(spec.env) if spec.env is not None else dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv comes from our own specs
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd,
                env=env,
                start_new_session=True,
                # SIGKILL: a child whose output pipe has no reader any more may hang in a
                # graceful shutdown; Celery's pool processes follow their parent the same way.
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        except FileNotFoundError as exc:
            raise MissingToolError(
                f"cannot start {spec.name}: {spec.argv[0]} not found; run `uv sync` in the repo root"
            ) from exc
        child = Child(spec=spec, proc=proc, started_at=process_start_time(proc.pid))
        child.reader = threading.Thread(
            target=self._pump, args=(child,), name=f"output-{spec.name}", daemon=True
        )
        child.reader.start()
        with self._lock:
            self.children.append(child)
        self._changed()
        return child

    def _pump(self, child: Child) -> None:
        stream = child.proc.stdout
        assert stream is not None
        log = self.output.open_log(child.name)
        try:
            for raw in iter(stream.readline, b""):
                if log is not None:
                    log.write(raw)
                    log.flush()
                text = raw.decode(errors="replace").rstrip("\r\n")
                child.tail.append(text)
                self.output.line(child.spec, text)
        finally:
            stream.close()
            if log is not None:
                log.close()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def failure_message(self, child: Child, when: str) -> str:
        where = self.output.log_path(child.name)
        hint = f" (full output: {where})" if where else ""
        return f"{child.name} exited with code {child.returncode} {when}: {child.last_line()}{hint}"

    def run_once(self, spec: ChildSpec, *, stop: threading.Event, timeout: float) -> Child:
        """Run a short-lived child to completion (or until `stop`), and return it."""
        child = self.spawn(spec)
        deadline = time.monotonic() + timeout
        try:
            while child.returncode is None:
                if stop.is_set():
                    raise KeyboardInterrupt
                if time.monotonic() > deadline:
                    raise StackFailedError(
                        f"{spec.name} did not finish within {timeout:.0f}s: {child.last_line()}"
                    )
                time.sleep(0.05)
            if child.reader is not None:
                child.reader.join(timeout=5)
        finally:
            self._stop_group([child], self.stop_timeout)
            with self._lock:
                self.children.remove(child)
            self._changed()
        return child

    def wait_ready(
        self,
        child: Child,
        ready: Callable[[], bool],
        *,
        stop: threading.Event,
        timeout: float,
        what: str,
    ) -> None:
        """Poll `ready` until true; fail with the child's last output if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if stop.is_set():
                raise KeyboardInterrupt
            if child.returncode is not None:
                raise StackFailedError(self.failure_message(child, "during startup"))
            if time.monotonic() > deadline:
                raise StackFailedError(
                    f"{child.name} was not {what} within {timeout:.0f}s: {child.last_line()}"
                )
            time.sleep(0.1)

    def exited(self) -> Child | None:
        """The first child that exited without being asked to, if any."""
        with self._lock:
            children = list(self.children)
        for child in children:
            if not child.stopping and child.returncode is not None:
                return child
        return None

    def watch(
        self, stop: threading.Event, done: threading.Event | None = None, poll: float = 0.1
    ) -> Child | None:
        """Block until `stop` or `done` is set, or a child exits; return that child if one did."""
        while True:
            dead = self.exited()
            if dead is not None:
                return dead
            if stop.is_set() or (done is not None and done.is_set()):
                return None
            stop.wait(poll)

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every child, phase by phase; SIGKILL whatever outlives the timeout."""
        with self._lock:
            children = list(self.children)
        for phase in sorted({c.spec.stop_phase for c in children}):
            self._stop_group(
                [c for c in children if c.spec.stop_phase == phase],
                self.stop_timeout if timeout is None else timeout,
            )
        with self._lock:
            self.children = [c for c in self.children if c not in children]
        self._changed()

    @staticmethod
    def _stop_group(children: list[Child], timeout: float) -> None:
        for child in children:
            child.stopping = True
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(child.spec.stop_signal)
        deadline = time.monotonic() + timeout
        # Leader gone is not enough: a worker's pool processes may linger in its group.
        while time.monotonic() < deadline and any(
            child.returncode is None or group_alive(child.pid) for child in children
        ):
            time.sleep(0.05)
        for child in children:
            if child.returncode is None or group_alive(child.pid):
                signal_group(child.pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=5)
            if child.reader is not None:
                child.reader.join(timeout=2)
