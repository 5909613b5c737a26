"""A worker's cold shutdown that hangs: it writes where, then ends itself.

Both workers turn SIGTERM into a cold shutdown (``REMAP_SIGTERM=SIGQUIT``): Celery first
waits the soft-shutdown timeout for running tasks, cancels what is left, and only then
announces the cold shutdown (``worker_shutting_down``, ``how="Cold"``) and joins the pool.
What is left after that (broker teardown, the metrics server, interpreter exit) takes a
second or two. Seen hanging there: the remote-control queue's cleanup reconnecting to
Redis, blocked in the lookup of the broker's host name — until the platform's SIGKILL
(Railway: the soft-shutdown timeout plus 30 s, ``infra/railway``), with no word of where.

So a main process still alive ``STACKS_AFTER_S`` after the announcement writes every
thread's stack to stderr, and one still alive ``EXIT_AFTER_S`` after ends itself, exit
status 0: the tasks are back in the queue or done, nothing is left to lose. A warm
shutdown waits for running tasks as long as they take, so only a cold one is timed.
"""

from __future__ import annotations

import faulthandler
import os
import threading
from typing import Any

from celery.signals import worker_shutting_down

STACKS_AFTER_S = 15.0
EXIT_AFTER_S = 20.0


def bound_cold_shutdown() -> None:
    """Time this process's cold shutdown (see the module docstring); connecting twice is
    connecting once."""
    worker_shutting_down.connect(_on_shutting_down, weak=False, dispatch_uid=__name__)


def _on_shutting_down(how: str = "", **_: Any) -> None:
    # Sent from the main process's signal handler: start the timers, never wait here.
    if how != "Cold":
        return
    ender = threading.Timer(EXIT_AFTER_S, _end_stuck_shutdown)
    ender.daemon = True
    ender.start()
    faulthandler.dump_traceback_later(STACKS_AFTER_S, exit=False, file=_STDERR_FD)


# The process's own stderr, not ``sys.stderr``: a Celery worker replaces that with a logging
# proxy (``worker_redirect_stdouts``), which has no file descriptor for faulthandler.
_STDERR_FD = 2


def _end_stuck_shutdown() -> None:
    message = (
        f"cold shutdown still running after {EXIT_AFTER_S:g} s (tasks cancelled or "
        "requeued; stacks above): exiting\n"
    )
    os.write(_STDERR_FD, message.encode())
    os._exit(0)
