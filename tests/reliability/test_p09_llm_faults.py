"""Promise 9: LLM faults (429 with retry-after, 5xx, timeouts, malformed JSON, refusal,
``finish_reason=length``) → bounded retries; failure recorded with a reason; the number of
requests per roadmap never exceeds the documented cap (``roadmap_core.llm.budget``)."""

from __future__ import annotations

from typing import Any

import pytest

from roadmap_core.llm.budget import worst_case_requests
from roadmap_core.settings import LLMSettings
from roadmap_dev.fake_llm import FakeLLM
from tests.support.db import Db
from tests.support.llmlog import per_item, requests_after_save
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

SDK_RETRIES = 1
ATTEMPTS = 3
LIMITS = {
    "LLM_SDK_MAX_RETRIES": str(SDK_RETRIES),
    "LLM_TASK_MAX_ATTEMPTS": str(ATTEMPTS),
    "LLM_TIMEOUT_S": "3",
}


def _rule(fault: str, concept: str, schema: str, times: int | None, **extra: Any) -> dict[str, Any]:
    return {
        "fault": fault,
        "match_prompt": f"- concept id: {concept}\n",
        "match_schema": schema,
        "times": times,
        **extra,
    }


async def test_p09_llm_faults_bounded_retries_reason_recorded_requests_within_cap(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    stack.start(concurrency=2, settings=LIMITS)
    client, _ = stack.new_user()
    request = small_request(review=True)
    job = str(client.create_roadmap(**request).id)
    await db.wait_jobs([job], {"awaiting_review"}, within=60, context=stack.logs)
    c0, c1, c2 = [
        r["key"]
        for r in await db.fetch("SELECT key FROM concepts WHERE job_id = $1 ORDER BY position", job)
    ]
    fake.configure(
        rules=[
            # transient: retried (by the SDK or the task) and then stored
            _rule("rate_limit", c0, "Tutorial", 1, retry_after_s=0.2),
            _rule("server_error", c0, "ResourceList", 2),
            _rule("timeout", c0, "Quiz", 1),
            _rule("malformed", c1, "Tutorial", 1),
            # permanent, or transient for ever: failed with a reason
            _rule("refusal", c1, "Quiz", None),
            _rule("length", c2, "Tutorial", None),
            _rule("server_error", c2, "Quiz", None),
        ]
    )
    client.review(job, approve=True)
    statuses = await db.wait_jobs([job], within=180, context=stack.logs)
    assert statuses[job] == "partial_failure"

    items = {(i["concept_key"], i["kind"]): i for i in await db.items(job)}
    failed = {k for k, i in items.items() if i["status"] == "failed"}
    assert failed == {(c1, "quiz"), (c2, "tutorial"), (c2, "quiz")}
    assert "refusal" in items[(c1, "quiz")]["error"]
    assert "truncated" in items[(c2, "tutorial")]["error"]
    assert "server_error" in items[(c2, "quiz")]["error"]
    # The API reports the same reasons to the owner.
    detail = client.get_roadmap_json(job)
    reported = {
        (c["key"], kind): state.get("error")
        for stage in detail["framework"]["stages"]
        for module in stage["modules"]
        for c in module["concepts"]
        for kind, state in c["content"].items()
    }
    assert all(reported[k] for k in failed)
    for key, item in items.items():
        if key not in failed:
            assert (item["status"], item["results"]) == ("succeeded", 1), (key, item)

    requests = fake.requests()
    counts = {(k[1], k[2]): n for k, n in per_item(requests).items()}
    per_item_cap = (1 + SDK_RETRIES) * ATTEMPTS
    assert counts[(c1, "quiz")] == 1  # a refusal is not asked again
    assert counts[(c2, "tutorial")] == 1  # nor is a truncated answer
    assert 1 + SDK_RETRIES < counts[(c2, "quiz")] <= per_item_cap  # retried, but bounded
    assert counts[(c0, "resources")] == 3  # 500, SDK retry 500, task retry ok
    assert all(n <= per_item_cap for n in counts.values()), counts
    settings = LLMSettings(
        llm_sdk_max_retries=SDK_RETRIES, llm_task_max_attempts=ATTEMPTS, openai_base_url="x"
    )
    cap = worst_case_requests(settings, n_concepts=3)
    assert len(requests) <= cap, (len(requests), cap)
    print(f"p09: {len(requests)} requests for the roadmap, documented cap {cap}")
    assert requests_after_save(list(items.values()), requests) == []
