"""Issue 14, item 5: nothing is accepted that cannot succeed.

The bounds a plan can meet are checked when the request arrives (and documented in the
schema); numbers and booleans are strict. Before: ``weekly_hours=5e-324`` was accepted and
failed after four LLM calls; ``review: 0`` was taken for ``false``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from roadmap_dev.fake_llm import FakeLLM
from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.http import api_client
from tests.support.inproc import API, add_framework, new_user, roadmap_body, submit
from tests.support.stack import Stack

# (field, value) pairs refused at the door, each with the field named in the problem.
REFUSED_REQUEST_VALUES: list[tuple[str, Any]] = [
    ("weekly_hours", 5e-324),
    ("weekly_hours", 0.5),
    ("weekly_hours", 0),
    ("weekly_hours", -1),
    ("weekly_hours", 80.5),
    ("weekly_hours", "6"),
    ("weekly_hours", True),
    ("weeks", 0),
    ("weeks", 105),
    ("weeks", 2.5),
    ("weeks", 2.0),
    ("weeks", "2"),
    ("weeks", True),
    ("review", 0),
    ("review", 1),
    ("review", "true"),
    ("review", None),
]


def refused_fields(answer: httpx.Response) -> list[list[str | int]]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    return [error["loc"] for error in answer.json()["errors"]]


@pytest.mark.slow
async def test_i14_05_unmeetable_requests_refused_before_any_llm_call_smallest_plan_completes(
    stack: Stack, db: Db, fake: FakeLLM, capture: Capture
) -> None:
    stack.start()
    assert stack.api is not None
    async with api_client(stack.api.url, capture) as http:
        user = await new_user(http, capture.secrets)
        for field, value in REFUSED_REQUEST_VALUES:
            answer = await http.post(
                f"{API}/roadmaps", json=roadmap_body(**{field: value}), headers=user.headers
            )
            assert refused_fields(answer) == [["body", field]], (field, value)
        assert await db.fetchval("SELECT count(*) FROM roadmap_jobs") == 0
        assert fake.requests() == []

        # The smallest request accepted is one a plan can meet: it completes.
        smallest = await http.post(
            f"{API}/roadmaps",
            json=roadmap_body(weekly_hours=1, weeks=1, review=False),
            headers=user.headers,
        )
        assert smallest.status_code == 202, smallest.text
    job = smallest.json()["id"]
    statuses = await db.wait_jobs([job], within=90, context=stack.logs)
    assert statuses == {job: "completed"}, await db.job(job)


async def test_i14_05_every_number_and_boolean_of_every_body_is_strict(
    api: httpx.AsyncClient, clean_state: str, capture: Capture
) -> None:
    user = await new_user(api, capture.secrets)
    job = await submit(api, user)
    concept = (await add_framework(clean_state, job))[0]
    concept_url = f"{API}/roadmaps/{job}/concepts/{concept}"
    cases: list[tuple[str, str, dict[str, Any], list[str | int]]] = [
        ("post", f"{API}/roadmaps/{job}/review", {"approve": 0}, ["body", "approve"]),
        ("post", f"{API}/roadmaps/{job}/review", {"approve": "yes"}, ["body", "approve"]),
        ("put", f"{concept_url}/progress", {"status": True}, ["body", "status"]),
        ("post", f"{concept_url}/quiz/attempts", {"answers": [True]}, ["body", "answers", 0]),
        ("post", f"{concept_url}/quiz/attempts", {"answers": [1.0]}, ["body", "answers", 0]),
        (
            "post",
            f"{concept_url}/quiz/attempts",
            {"answers": [[0, True]]},
            ["body", "answers", 0, 1],
        ),
        (
            "post",
            f"{concept_url}/quiz/attempts",
            {"answers": [0], "quiz_version": "1"},
            ["body", "quiz_version"],
        ),
    ]
    for method, url, body, loc in cases:
        answer = await api.request(method, url, json=body, headers=user.headers)
        assert refused_fields(answer) == [loc], (url, body)
