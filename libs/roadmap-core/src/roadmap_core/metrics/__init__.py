"""Prometheus metrics of every service, correct across its processes.

A service runs several processes (uvicorn workers, Celery's main process and its prefork
children) and a scrape reaches one of them. ``prometheus_client``'s multiprocess mode has
each process write its samples to files in one directory shared by the service's
processes; whichever process answers a scrape reads them all (:mod:`.processes`). So
after 1,000 requests over two API workers the request counter reads 1,000, and the
content worker's task counters include every child, the replaced ones too.

Where each family is recorded:

========================================  ==================================================
``roadmap_api_*``                          the API (``roadmap_api.metrics``)
``roadmap_worker_tasks_total``,            both workers, every task by outcome (:mod:`.tasks`)
``roadmap_worker_task_duration_seconds``
``roadmap_llm_*``                          wherever an LLM call is made (:mod:`.llm`)
``roadmap_queue_depth``,                   computed at scrape time from Redis (:mod:`.queues`)
``roadmap_queue_oldest_age_seconds``
``roadmap_logs_*``                         the logs worker (``roadmap_worker_logs.metrics``)
========================================  ==================================================

Served as issue 14 requires, never anonymously: the API's ``/metrics`` and each worker's
metrics port (:mod:`.exposition`) answer only ``Authorization: Bearer <METRICS_TOKEN>``.
"""
