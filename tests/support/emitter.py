"""Emit execution-log events from a process of its own, as a service would.

Run as a script: ``python emitter.py REDIS_URL JOB_ID COUNT``. Messages are
``"<i> of <job>"``; prints the emitter's counters as one JSON line; exits 1 if the
final flush did not complete.
"""

from __future__ import annotations

import json
import sys
import uuid

from roadmap_core import logship
from roadmap_core.celery_app import create_celery_app
from roadmap_core.domain import LogCategory
from roadmap_core.logdetails import LlmCallDetails
from roadmap_core.settings import LogShipSettings, RedisSettings


def main(argv: list[str]) -> int:
    redis_url, job, count = argv[0], uuid.UUID(argv[1]), int(argv[2])
    app = create_celery_app("reliability-emitter", RedisSettings(redis_url=redis_url))
    settings = LogShipSettings(log_batch_size=200, log_flush_interval_ms=20)
    logship.configure_logship(app, settings, source="reliability-emitter")
    for i in range(count):
        logship.emit(
            f"{i} of {job}",
            job_id=job,
            category=LogCategory.content,
            step="content_generation",
            details=LlmCallDetails(
                model="emitter", prompt_tokens=i, completion_tokens=0, cost_usd="0", outcome="ok"
            ),
        )
    ok = logship.flush(120)
    print(json.dumps(logship.stats().as_dict()), flush=True)
    logship.shutdown(5)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
