"""Watch an asyncio loop from another thread and report when it stalls.

A blocking call on the loop (sync I/O, a long CPU loop) would stop every batch
this process writes. The watchdog posts a no-op to the loop every interval; if it
has not run after the threshold, it logs a warning with the loop thread's stack,
once per stall, and again when the loop recovers.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger(__name__)


def thread_stack(ident: int) -> str:
    frame = sys._current_frames().get(ident)
    if frame is None:
        return "(thread not running)"
    return "".join(traceback.format_stack(frame))


class LoopWatchdog:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        loop_thread_ident: int,
        *,
        threshold_s: float,
        interval_s: float,
    ) -> None:
        self._loop = loop
        self._ident = loop_thread_ident
        self.threshold_s = threshold_s
        self.interval_s = interval_s
        self.lag_s = 0.0
        self.max_lag_s = 0.0
        self.stalls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logs-loop-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            ran = threading.Event()
            posted = time.monotonic()
            try:
                self._loop.call_soon_threadsafe(ran.set)
            except RuntimeError:  # loop closed: the process is shutting down
                return
            if ran.wait(self.threshold_s):
                self._record(time.monotonic() - posted)
                continue
            self.stalls += 1
            log.warning(
                "logs worker event loop stalled for more than %.2fs; loop thread stack:\n%s",
                self.threshold_s,
                thread_stack(self._ident),
            )
            while not ran.wait(self.interval_s):
                if self._stop.is_set():
                    return
            lag = time.monotonic() - posted
            # Log before publishing the lag, so whoever watches max_lag_s also sees the log.
            log.warning("logs worker event loop ran again after a %.2fs stall", lag)
            self._record(lag)

    def _record(self, lag: float) -> None:
        self.lag_s = lag
        self.max_lag_s = max(self.max_lag_s, lag)
