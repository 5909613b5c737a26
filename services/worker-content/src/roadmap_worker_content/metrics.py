"""The content worker's own metrics (summed over its prefork children).

* ``roadmap_jobs_finished_total{status}``: jobs this worker brought to an end —
  ``completed``, ``partial_failure``, ``failed``, ``cancelled`` — counted where the final
  event is published (each finalisation is announced exactly once, by whoever made it).
  The failure-rate alert divides the failed ones by all of them.

The LLM families (``roadmap_llm_*``) and task outcomes (``roadmap_worker_tasks_total``)
are recorded by ``roadmap_core.metrics``.
"""

from __future__ import annotations

import functools

from prometheus_client import Counter

from roadmap_core.metrics.processes import LOCAL


@functools.cache
def jobs_finished() -> Counter:
    # Built on first use, in a child, after the main process enabled multiprocess mode.
    return Counter(
        "roadmap_jobs_finished", "Jobs brought to a final status, by status", ("status",),
        registry=LOCAL,
    )  # fmt: skip
