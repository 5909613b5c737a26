"""``roadmap-worker-content`` / ``python -m roadmap_worker_content``: run the content worker.

Sets ``REMAP_SIGTERM=SIGQUIT`` before Celery is imported (billiard reads it at
import time) so SIGTERM starts a soft shutdown instead of waiting for every
running task, then starts a prefork worker consuming ``content_generation``; with
``chat`` as the first argument, one consuming only the mentor chat's answers (``chat``),
with ``CHAT_WORKER_CONCURRENCY`` children. Extra arguments are passed to ``celery worker``
(e.g. ``--loglevel INFO``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    from roadmap_core.contracts import CHAT_QUEUE, CONTENT_QUEUE
    from roadmap_worker_content.app import celery_app, settings

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["chat"]:
        queue = ["--queues", CHAT_QUEUE, "--hostname", "chat@%h"]
        argv = [*queue, "--concurrency", str(settings.chat_worker_concurrency), *args[1:]]
    else:
        argv = ["--queues", CONTENT_QUEUE, *args]
    celery_app.worker_main(["worker", "--pool", "prefork", *argv])


if __name__ == "__main__":
    main()
