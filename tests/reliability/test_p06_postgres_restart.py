"""Promise 6: PostgreSQL restarted mid-run → services reconnect; jobs complete; the API
answers 503 (not hangs) while it is down."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from roadmap_dev.fake_llm import FakeLLM
from roadmap_devservers.embedded import EmbeddedPostgres
from tests.support.db import Db
from tests.support.llmlog import item_of, per_item, requests_after_save, wait_for_request
from tests.support.servers import private_database
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

CLIENT_TIMEOUT_S = 15.0  # a hanging API would hit this; the answer must come well before
ANSWER_BOUND_S = 8.0


async def test_p06_postgres_restarted_mid_run_services_reconnect_jobs_complete_api_503_while_down(
    clean_state: str,
    redis_url: str,
    fake: FakeLLM,
    own_postgres: EmbeddedPostgres,
    stack_on: Callable[..., Stack],
) -> None:
    database_url = await private_database(own_postgres)
    db = Db(database_url)
    try:
        fake.configure(latency_ms=800)
        stack = stack_on(database_url=database_url, redis_url=redis_url)
        stack.start(concurrency=2)
        client, _ = stack.new_user()
        jobs = [str(client.create_roadmap(**small_request()).id) for _ in range(2)]
        wait_for_request(fake, lambda r: item_of(r) is not None, timeout=60, what="for content")
        await db.close()

        own_postgres.stop()
        assert stack.api is not None
        headers = {"Authorization": f"Bearer {client.token}"}
        async with httpx.AsyncClient(base_url=stack.api.url, timeout=CLIENT_TIMEOUT_S) as raw:
            for method, path, body in (
                ("GET", f"/api/v1/roadmaps/{jobs[0]}", None),
                ("GET", "/api/v1/roadmaps", None),
                ("POST", "/api/v1/roadmaps", small_request()),
            ):
                started = time.monotonic()
                answer = await raw.request(method, path, json=body, headers=headers)
                took = time.monotonic() - started
                stack.capture.record_response(answer.request, answer)
                assert answer.status_code == 503, (method, path, answer.status_code, answer.text)
                assert took < ANSWER_BOUND_S, (method, path, took)
                print(f"p06: {method} {path} → 503 in {took:.2f}s while Postgres was down")
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert "Retry-After" in answer.headers
            ready = await raw.get("/readyz")
            assert ready.status_code == 503

        own_postgres.start()
        statuses = await db.wait_jobs(jobs, within=120, context=stack.logs)
        assert set(statuses.values()) == {"completed"}, statuses
        requests = fake.requests()
        for job in jobs:
            items = await db.items(job)
            assert {i["status"] for i in items} == {"succeeded"}
            assert [i["results"] for i in items] == [1] * len(items)
            assert requests_after_save(items, requests) == []
        assert max(per_item(requests).values()) <= 2
        # The API reconnected too.
        assert client.get_roadmap(jobs[0]).status == "completed"
    finally:
        await db.close()
