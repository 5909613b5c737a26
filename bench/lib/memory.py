"""Memory of a service: RSS and PSS summed over its processes, sampled in the background.

RSS counts pages shared between a prefork parent and its children once per process, so the
RSS sum overstates what the service really holds; PSS splits shared pages between their
users and adds up to what the kernel charges the service's container. Both are reported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import psutil

MIB = 2**20


@dataclass
class Memory:
    rss_mib: float
    pss_mib: float
    processes: int


def measure(pids: list[int]) -> Memory:
    rss = pss = 0
    counted = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            try:
                full = proc.memory_full_info()
                rss += full.rss
                pss += getattr(full, "pss", full.rss)
            except psutil.AccessDenied:
                rss += proc.memory_info().rss
                pss += proc.memory_info().rss
            counted += 1
        except psutil.Error:
            continue  # exited between listing and reading
    return Memory(rss / MIB, pss / MIB, counted)


class PeakSampler:
    """Peak RSS/PSS per service while running; `pids_of(name)` is re-read every sample
    (pool children come and go)."""

    def __init__(
        self, names: list[str], pids_of: Callable[[str], list[int]], interval_s: float = 0.25
    ) -> None:
        self.names = names
        self.pids_of = pids_of
        self.interval_s = interval_s
        self.peak: dict[str, Memory] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            for name in self.names:
                now = measure(self.pids_of(name))
                best = self.peak.get(name)
                if best is None:
                    self.peak[name] = now
                else:
                    self.peak[name] = Memory(
                        max(best.rss_mib, now.rss_mib),
                        max(best.pss_mib, now.pss_mib),
                        max(best.processes, now.processes),
                    )
            if self._stop.wait(self.interval_s):
                return
