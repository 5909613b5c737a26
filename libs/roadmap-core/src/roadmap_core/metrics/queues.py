"""Queue depth and the age of the oldest waiting message, read from Redis at scrape time.

A gauge set by whichever process last looked would go stale in a file; a collector that
asks Redis when scraped is always current. A Redis that does not answer within its
socket timeout leaves the families out of that scrape and counts the failure in
``roadmap_metrics_scrape_errors_total{source="redis"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from roadmap_core.broker_queues import oldest_age, queue_keys

log = logging.getLogger(__name__)


def queue_families(
    depths: Mapping[str, int], ages: Mapping[str, float | None]
) -> list[GaugeMetricFamily]:
    """``roadmap_queue_depth`` and ``roadmap_queue_oldest_age_seconds`` of these readings
    (0 s for a queue with nothing waiting). The API's scrape reports the same families."""
    depth = GaugeMetricFamily(
        "roadmap_queue_depth", "Messages waiting in each Celery queue", labels=["queue"]
    )
    age = GaugeMetricFamily(
        "roadmap_queue_oldest_age_seconds",
        "Seconds since the oldest waiting message of each queue was sent (0: empty)",
        labels=["queue"],
    )
    for queue, n in depths.items():
        depth.add_metric([queue], n)
        age.add_metric([queue], ages.get(queue) or 0.0)
    return [depth, age]


class QueueCollector(Collector):
    def __init__(self, redis: Redis, queues: Sequence[str]) -> None:
        self._redis = redis
        self._queues = list(queues)
        self._errors = 0

    def collect(self) -> Iterator[Metric]:
        depths: dict[str, int] = {}
        ages: dict[str, float | None] = {}
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for queue in self._queues:
                    for key in queue_keys(queue):
                        pipe.llen(key)
                        pipe.lindex(key, -1)
                answers = iter(pipe.execute())
            for queue in self._queues:
                lengths, tails = [], []
                for _ in queue_keys(queue):
                    lengths.append(int(next(answers)))
                    tails.append(next(answers))
                depths[queue] = sum(lengths)
                ages[queue] = oldest_age(tails)
        except (RedisError, OSError) as exc:
            self._errors += 1
            log.warning("queue metrics unavailable: %s", type(exc).__name__)
        else:
            yield from queue_families(depths, ages)
        errors = CounterMetricFamily(
            "roadmap_metrics_scrape_errors",
            "Scrape-time sources that did not answer",
            labels=["source"],
        )
        errors.add_metric(["redis"], self._errors)
        yield errors
