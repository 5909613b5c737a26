"""A cold shutdown that hangs writes every thread's stack, then ends itself; a warm one
is never timed."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A stand-in for a worker's main process after Celery announced its shutdown.
_SHUTTING_DOWN = """
import logging, sys, time
from celery.signals import worker_shutting_down
from celery.utils.log import LoggingProxy
from roadmap_core import celery_shutdown as guard
# What a worker's main process has for stderr (worker_redirect_stdouts): no file descriptor.
sys.stderr = LoggingProxy(logging.getLogger("redirected"))
guard.bound_cold_shutdown()
guard.bound_cold_shutdown()  # a second import of the app must not start two timers
guard.STACKS_AFTER_S = 0.2
guard.EXIT_AFTER_S = float(sys.argv[2])
worker_shutting_down.send(sender="worker@test", sig="SIGTERM", how=sys.argv[1], exitcode=1)
def still_shutting_down():
    time.sleep(1.5)
still_shutting_down()
raise SystemExit(3)
"""


def _shut_down(how: str, exit_after_s: float) -> subprocess.CompletedProcess[str]:
    # Bounded by the timeout: a shutdown that never ends raises TimeoutExpired.
    return subprocess.run(
        [sys.executable, "-c", _SHUTTING_DOWN, how, str(exit_after_s)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("how", "dumped"), [("Cold", True), ("Warm", False)])
def test_a_cold_shutdown_that_hangs_writes_every_threads_stack(how: str, dumped: bool) -> None:
    result = _shut_down(how, exit_after_s=30)
    # Not ended early: it finished on its own (exit 3) after the stacks were written.
    assert result.returncode == 3, result.stderr
    assert ("in still_shutting_down" in result.stderr) is dumped, result.stderr
    assert "cold shutdown still running" not in result.stderr


def test_a_cold_shutdown_that_hangs_ends_itself_once() -> None:
    result = _shut_down("Cold", exit_after_s=0.5)
    assert result.returncode == 0, result.stderr
    assert "in still_shutting_down" in result.stderr
    assert result.stderr.count("cold shutdown still running after 0.5 s") == 1, result.stderr


def test_a_warm_shutdown_is_never_ended() -> None:
    result = _shut_down("Warm", exit_after_s=0.5)
    assert result.returncode == 3, result.stderr
    assert "cold shutdown still running" not in result.stderr
