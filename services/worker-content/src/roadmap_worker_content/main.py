"""``roadmap-worker-content`` / ``python -m roadmap_worker_content``: run the content worker.

Sets ``REMAP_SIGTERM=SIGQUIT`` before Celery is imported (billiard reads it at
import time) so SIGTERM starts a soft shutdown instead of waiting for every
running task, then starts a prefork worker consuming ``content_generation``.
Extra arguments are passed to ``celery worker`` (e.g. ``--loglevel INFO``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    from roadmap_core.contracts import CONTENT_QUEUE
    from roadmap_worker_content.app import celery_app

    args = sys.argv[1:] if argv is None else argv
    celery_app.worker_main(["worker", "--pool", "prefork", "--queues", CONTENT_QUEUE, *args])


if __name__ == "__main__":
    main()
