"""Emit execution-log events from a separate process, as the content worker would.

Usage: python emitter.py REDIS_URL SPEC [SPEC ...] where SPEC is ``JOB_ID:COUNT``.
Events of all jobs are interleaved; each job's messages are ``"<i> of <job>"``.
With ``--pause`` it emits the first half, flushes, prints ``paused`` and waits for
a line on stdin before emitting the rest (the test stops the broker meanwhile).
Prints one JSON line with the emitter's counters at the end; exits 1 if a flush
did not complete.
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
    pause = "--pause" in argv
    args = [a for a in argv if a != "--pause"]
    redis_url, specs = args[0], args[1:]
    jobs = [(uuid.UUID(job), int(count)) for job, count in (s.split(":") for s in specs)]
    app = create_celery_app("emitter", RedisSettings(redis_url=redis_url))
    settings = LogShipSettings(log_batch_size=200, log_flush_interval_ms=50)
    logship.configure_logship(app, settings, source="test-emitter")

    total = max(count for _, count in jobs)
    for i in range(total):
        if pause and i == total // 2:
            if not logship.flush(30):
                return 1
            print("paused", flush=True)
            sys.stdin.readline()
        for job, count in jobs:
            if i < count:
                logship.emit(
                    f"{i} of {job}",
                    job_id=job,
                    category=LogCategory.content,
                    step="content_generation",
                    details=LlmCallDetails(
                        model="emitter",
                        prompt_tokens=i,
                        completion_tokens=0,
                        cost_usd="0",
                        outcome="ok",
                    ),
                )
    ok = logship.flush(60)
    print(json.dumps(logship.stats().as_dict()), flush=True)
    logship.shutdown(5)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
