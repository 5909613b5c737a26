"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.jobs = Gauge(
            "roadmap_jobs", "Roadmap jobs (not deleted) by status", ("status",),
            registry=self.registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "roadmap_queue_depth", "Messages waiting in each Celery queue", ("queue",),
            registry=self.registry,
        )  # fmt: skip
        self.enqueue_failures = Counter(
            "roadmap_api_enqueue_failures", "Task sends that failed or timed out (the reconciler"
            " delivers them later)", ("task",), registry=self.registry,
        )  # fmt: skip
        self.scrape_errors = Counter(
            "roadmap_api_metrics_scrape_errors", "Gauges left stale because a backend failed",
            ("source",), registry=self.registry,
        )  # fmt: skip
