"""Shared helpers of the root (cross-service) tests: real processes, waits, log capture.

Fixtures live in ``tests/conftest.py``; the pieces they are built from live here so that
``tests/e2e`` and others can use them directly too:

* ``stack``: :class:`Stack` — ``start(api=, content_workers=, logs_worker=, concurrency=,
  settings=, **ENV)``, ``content_worker()``, ``logs_worker()``, ``extra_api()``,
  ``new_user()``, ``client()``; processes in ``processes`` (pids, ``children()``,
  ``kill()``, ``send(sig)``, ``log()``); ``FAST_SETTINGS`` and ``small_request()``;
* ``db``: :class:`Db` — ``wait_jobs(ids, statuses, within=)``, ``items(job)``, ``job(job)``;
* ``llmlog``: the fake LLM's request log by item (``per_item``, ``requests_after_save``);
* ``capture``: process output, log records and error bodies for the secret scan;
* ``inproc``: users and rows for in-process API tests; ``jwt_forge``: hostile tokens.
"""
