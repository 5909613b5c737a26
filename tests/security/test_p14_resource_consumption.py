"""Promise 14: resource consumption — oversized bodies and strings, too many concepts, and
quotas (active jobs, jobs/day, tokens/day) → 4xx before any LLM spend (OWASP API4:2023)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from roadmap_client import ApiError, RoadmapClient
from roadmap_dev.fake_llm import FakeLLM
from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.inproc import API, add_framework, new_user, roadmap_body, submit
from tests.support.llmlog import content_requests
from tests.support.stack import Stack, small_request

MAX_BODY = 64 * 1024  # ApiSettings.max_body_bytes default


async def _chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    yield b'{"goal": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'", "level": "beginner", "weekly_hours": 2, "weeks": 2}'


async def test_p14_oversized_bodies_and_strings_refused_before_anything_is_stored(
    api: httpx.AsyncClient, clean_state: str, db: Db, capture: Capture
) -> None:
    user = await new_user(api, capture.secrets)
    job = await submit(api, user)
    concept = (await add_framework(clean_state, job))[0]
    roadmaps = f"{API}/roadmaps"
    concept_url = f"{roadmaps}/{job}/concepts/{concept}"

    declared = await api.post(
        roadmaps,
        content=b'{"goal": "' + b"x" * (MAX_BODY + 1) + b'"}',
        headers={**user.headers, "content-type": "application/json"},
    )
    assert declared.status_code == 413
    streamed = await api.post(
        roadmaps,
        content=_chunks(MAX_BODY * 4),
        headers={**user.headers, "content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert "content-length" not in streamed.request.headers  # really streamed, undeclared

    too_long = [
        ("post", roadmaps, roadmap_body(goal="g" * 501)),
        ("post", roadmaps, roadmap_body(background="b" * 2001)),
        ("post", roadmaps, roadmap_body(learning_style="s" * 201)),
        # the knobs that size a plan are bounded too
        ("post", roadmaps, roadmap_body(weeks=105)),
        ("post", roadmaps, roadmap_body(weekly_hours=81)),
        ("post", f"{roadmaps}/{job}/review", {"approve": False, "feedback": "f" * 4001}),
        ("post", f"{concept_url}/regenerate", {"kinds": ["tutorial"], "instructions": "i" * 2001}),
        ("post", f"{concept_url}/regenerate", {"kinds": ["tutorial"] * 4}),
        (
            "post",
            f"{concept_url}/quiz/attempts",
            {"answers": [0] * 21},
        ),
        ("post", f"{API}/me/api-keys", {"name": "n" * 101}),
        ("get", f"{roadmaps}?limit=101", None),
        ("get", f"{roadmaps}?cursor={'c' * 513}", None),
    ]
    for method, url, body in too_long:
        answer = await api.request(method, url, json=body, headers=user.headers)
        assert answer.status_code == 422, (method, url, answer.status_code)
    password = "P" + uuid.uuid4().hex * 5
    capture.secrets.add(password)
    long_password = await api.post(
        f"{API}/auth/register", json={"email": "long@example.com", "password": password}
    )
    assert long_password.status_code == 422

    assert await db.fetchval("SELECT count(*) FROM roadmap_jobs") == 1  # only the valid one
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 0
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = 'long@example.com'") == 0


def _refused(client: RoadmapClient, quota: str, **request: object) -> str:
    """POST a roadmap that a quota must refuse; returns its (unique) goal."""
    body = small_request(**request)
    with pytest.raises(ApiError) as refused:
        client.create_roadmap(**body)
    assert refused.value.status == 429, refused.value
    assert refused.value.problem.quota == quota, refused.value.body
    return str(body["goal"])


@pytest.mark.slow
async def test_p14_concept_cap_and_quotas_active_daily_tokens_4xx_before_llm_spend(
    stack: Stack, db: Db, fake: FakeLLM
) -> None:
    fake.configure(concepts=None)  # the fake sizes plans from the hour budget
    stack.start(
        concurrency=2,
        MAX_CONCEPTS="3",
        QUOTA_MAX_ACTIVE_JOBS="2",
        QUOTA_JOBS_PER_DAY="3",
    )
    # The same servers behind an API whose daily token budget one plan already exceeds.
    tight = stack.extra_api(QUOTA_TOKENS_PER_DAY="1")
    client, _ = stack.new_user()
    # Reviews keep the jobs active (awaiting_review) after their two planning calls.
    huge = client.create_roadmap(**small_request(review=True, weeks=104, weekly_hours=80))
    second = client.create_roadmap(**small_request(review=True))
    accepted = [str(huge.id), str(second.id)]
    await db.wait_jobs(accepted, {"awaiting_review"}, within=60, context=stack.logs)
    concepts = await db.fetchval("SELECT count(*) FROM concepts WHERE job_id = $1", huge.id)
    assert 1 <= concepts <= 3  # an 8320-hour budget still plans at most MAX_CONCEPTS

    refused = [_refused(client, "active_jobs", review=True)]
    tight_client = stack.client(token=client.token, api=tight)
    refused.append(_refused(tight_client, "tokens_per_day", review=True))

    client.cancel(accepted[0])
    third = client.create_roadmap(**small_request(review=True))  # 3rd of the day
    accepted.append(str(third.id))
    await db.wait_jobs([third.id], {"awaiting_review"}, within=60, context=stack.logs)
    client.cancel(accepted[1])
    client.cancel(accepted[2])
    refused.append(_refused(client, "jobs_per_day", review=True))

    await asyncio.sleep(3)  # a refused job that had slipped through would be planning by now
    goals = {r["goal"] for r in fake.requests()}
    rows = {r["goal"] for r in await db.fetch("SELECT request->>'goal' AS goal FROM roadmap_jobs")}
    for goal in refused:
        assert goal not in goals, goal
        assert goal not in rows, goal
    assert len(rows) == len(accepted)
    assert content_requests(fake.requests()) == []  # nothing was approved, nothing generated
