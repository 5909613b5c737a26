"""How the logs worker holds its messages at the broker (kombu's Redis transport).

A worker reserves batches ahead and acknowledges each after its rows committed. The
Redis transport keeps every delivered, unacknowledged message in an "unacked" hash with
its delivery time, and a consumer's periodic sweep puts back the ones older than its
``visibility_timeout``: that is how the batches of a worker killed outright (no chance
to hand them back) return.

The sweep puts back whatever is in the hash it looks at. Content tasks run up to the
content hard time limit and use the shared hash with an hour's timeout; were the logs
worker to sweep that hash with its own minutes, it would hand running content tasks to
another worker. So the logs worker keeps its messages in keys of its own
(``unacked_key`` and friends are transport options), under ``LOGS_VISIBILITY_TIMEOUT_S``,
and sweeps them every ``RESTORE_SWEEP_S``: a killed worker's batches are back in the
queue within ``restore_bound_s`` of their delivery, given a logs worker is running.
"""

from __future__ import annotations

from typing import Any, Final

from roadmap_worker_logs.settings import LogsWorkerSettings

UNACKED_KEY: Final = "roadmap:logs:unacked"
UNACKED_INDEX_KEY: Final = "roadmap:logs:unacked_index"
UNACKED_MUTEX_KEY: Final = "roadmap:logs:unacked_mutex"
# Seconds between sweeps (kombu scans on every call with a throttle of 1).
RESTORE_SWEEP_S: Final = 10
# A worker killed during a sweep leaves the sweep's lock behind for this long.
UNACKED_MUTEX_EXPIRE_S: Final = 60


def transport_options(settings: LogsWorkerSettings, shared: dict[str, Any]) -> dict[str, Any]:
    """The logs worker's broker transport options: ``shared`` (every process's) with the
    logs queue's own visibility timeout, unacked keys and sweep period."""
    return {
        **shared,
        "visibility_timeout": settings.logs_visibility_timeout_s,
        "unacked_key": UNACKED_KEY,
        "unacked_index_key": UNACKED_INDEX_KEY,
        "unacked_mutex_key": UNACKED_MUTEX_KEY,
        "unacked_mutex_expire": UNACKED_MUTEX_EXPIRE_S,
        "unacked_restore_interval": RESTORE_SWEEP_S,
        "unacked_restore_throttle": 1,
    }


def restore_bound_s(settings: LogsWorkerSettings) -> float:
    """Longest time from a batch's delivery to a dead worker until it is queued again
    (a logs worker running meanwhile): its visibility timeout plus one sweep, plus the
    time a sweep lock left by a worker killed mid-sweep may hold the next ones off."""
    return settings.logs_visibility_timeout_s + RESTORE_SWEEP_S + UNACKED_MUTEX_EXPIRE_S
