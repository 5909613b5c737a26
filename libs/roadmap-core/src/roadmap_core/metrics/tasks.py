"""Every Celery task a worker runs, counted by outcome and timed (both workers).

``install()`` connects to Celery's task signals in the process that runs tasks (a
prefork child, or the worker itself with a solo/threads pool):

* ``roadmap_worker_tasks_total{task, outcome}``: ``success``, ``failure``, ``retry``
  (handed back to be tried again), ``rejected``, ``ignored``; a task killed with its
  process is not counted here (its redelivery is, when it runs again);
* ``roadmap_worker_task_duration_seconds{task}``: wall time from start to finish.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from celery import signals
from prometheus_client import Counter, Histogram

from roadmap_core.metrics.processes import LOCAL

TASK_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


@dataclass(frozen=True, slots=True)
class TaskMetrics:
    tasks: Counter
    duration: Histogram


@functools.cache
def task_metrics() -> TaskMetrics:
    # Built on first use, after the process chose how to store metrics (processes.enable).
    return TaskMetrics(
        tasks=Counter(
            "roadmap_worker_tasks", "Celery tasks run, by task name and outcome",
            ("task", "outcome"), registry=LOCAL,
        ),
        duration=Histogram(
            "roadmap_worker_task_duration_seconds", "Wall time of a task, by task name",
            ("task",), buckets=TASK_BUCKETS, registry=LOCAL,
        ),
    )  # fmt: skip


_started: dict[str, float] = {}


def _prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


def _postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _started.pop(task_id, None) if task_id else None
    name = str(getattr(task, "name", None) or "unknown")
    metrics = task_metrics()
    metrics.tasks.labels(name, (state or "unknown").lower()).inc()
    if started is not None:
        metrics.duration.labels(name).observe(time.perf_counter() - started)


def install() -> None:
    """Count and time every task this process runs (idempotent)."""
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="roadmap-metrics-prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="roadmap-metrics-postrun")
