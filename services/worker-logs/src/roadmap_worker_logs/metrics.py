"""The logs worker's own metrics (summed over its prefork children).

* ``roadmap_logs_batch_size``: events per ``logs.write_batch`` message written;
* ``roadmap_logs_lag_seconds``: per batch, from the oldest event's emission to the
  commit of its row, the longest an event of that batch waited;
* ``roadmap_logs_events_total{result}``: ``inserted``, ``duplicate`` (a redelivered
  batch), ``invalid`` (failed validation) and ``rejected`` (refused by the database).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from roadmap_core.metrics.processes import LOCAL

BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@dataclass(frozen=True, slots=True)
class LogsMetrics:
    batch_size: Histogram
    lag: Histogram
    events: Counter


@functools.cache
def logs_metrics() -> LogsMetrics:
    # Built on first use, in a child, after the main process enabled multiprocess mode.
    return LogsMetrics(
        batch_size=Histogram(
            "roadmap_logs_batch_size", "Execution-log events per batch written",
            buckets=BATCH_BUCKETS, registry=LOCAL,
        ),
        lag=Histogram(
            "roadmap_logs_lag_seconds",
            "Per batch, seconds from its oldest event's emission to the commit of its rows",
            buckets=LAG_BUCKETS, registry=LOCAL,
        ),
        events=Counter(
            "roadmap_logs_events", "Execution-log events handled, by result", ("result",),
            registry=LOCAL,
        ),
    )  # fmt: skip
