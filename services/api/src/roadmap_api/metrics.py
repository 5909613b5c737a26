"""Prometheus metrics recorded by the API (summed over its uvicorn workers).

Built by the lifespan of a served app, after ``roadmap_core.metrics.processes.enable``
(unless ``METRICS_MULTIPROCESS=false``), so every worker writes its samples where any
worker's ``/metrics`` reads them. Each instance registers in its own registry too, so an
in-process test can build many apps.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "roadmap_api_request_duration_seconds",
            "HTTP request latency by route template",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.enqueue_failures = Counter(
            "roadmap_api_enqueue_failures", "Task sends that failed or timed out (the reconciler"
            " delivers them later)", ("task",), registry=self.registry,
        )  # fmt: skip
        self.scrape_errors = Counter(
            "roadmap_api_metrics_scrape_errors", "Scrape-time gauges left out because a backend"
            " failed", ("source",), registry=self.registry,
        )  # fmt: skip
