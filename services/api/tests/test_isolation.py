"""Every ``{id}`` route answers 404 for another user's ids (and changes nothing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from roadmap_api.testing import Account, Seeder, queued_tasks
from roadmap_core.contracts import CHAT_QUEUE, CONTENT_QUEUE
from roadmap_core.domain import ItemStatus, JobStatus


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None


CALLS = [
    Call("GET", "/api/v1/roadmaps/{roadmap_id}"),
    Call("DELETE", "/api/v1/roadmaps/{roadmap_id}"),
    Call("GET", "/api/v1/roadmaps/{roadmap_id}/events"),
    Call("GET", "/api/v1/roadmaps/{roadmap_id}/logs"),
    Call("POST", "/api/v1/roadmaps/{roadmap_id}/review", {"approve": True}),
    Call("POST", "/api/v1/roadmaps/{roadmap_id}/cancel"),
    Call("POST", "/api/v1/roadmaps/{roadmap_id}/retry"),
    Call("GET", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}"),
    Call(
        "POST",
        "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/regenerate",
        {"kinds": ["quiz"]},
    ),
    Call("PUT", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/progress", {"status": "done"}),
    Call(
        "POST",
        "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/quiz/attempts",
        {"answers": [0, [0]]},
    ),
    Call("GET", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/quiz/attempts"),
    Call("POST", "/api/v1/roadmaps/{roadmap_id}/chat/messages", {"content": "Why?"}),
    Call("GET", "/api/v1/roadmaps/{roadmap_id}/chat/messages"),
    Call("GET", "/api/v1/roadmaps/{roadmap_id}/chat/events"),
    Call("DELETE", "/api/v1/me/api-keys/{key_id}"),
]


def test_every_id_route_is_covered(app: FastAPI) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if "{" in path
        for method in operations
    }
    assert routes == {(c.method, c.path) for c in CALLS}


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize("state", ["awaiting_review", "partial_failure"])
async def test_other_users_ids_are_404(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    seed: Seeder,
    redis: Redis,
    call: Call,
    state: str,
) -> None:
    # Bob's roadmap is in a state where each call would succeed for Bob himself.
    status = JobStatus(state)
    item_status = ItemStatus.pending if status is JobStatus.awaiting_review else ItemStatus.failed
    job = await seed.job(
        bob, status=status, concepts=1, item_status=item_status, review=True, with_results=True
    )
    if status is JobStatus.partial_failure:
        await seed.set_items(job.id, ItemStatus.failed)
    key = await client.post("/api/v1/me/api-keys", json={"name": "bob"}, headers=bob.headers)
    path = call.path.format(
        roadmap_id=job.id, concept_id=job.concept_ids[0], key_id=key.json()["id"]
    )
    before = await seed.get_job(job.id)

    response = await client.request(call.method, path, json=call.body, headers=alice.headers)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert str(job.id) not in response.text

    after = await seed.get_job(job.id)
    assert (after.status, after.deleted_at, after.updated_at) == (
        before.status, before.deleted_at, before.updated_at
    )  # fmt: skip
    assert await queued_tasks(redis, CONTENT_QUEUE) == []
    assert await queued_tasks(redis, CHAT_QUEUE) == []
    still_works = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {key.json()['key']}"}
    )
    assert still_works.status_code == 200


async def test_admin_listing_is_not_a_user_route(
    client: httpx.AsyncClient, alice: Account, bob: Account, seed: Seeder
) -> None:
    await seed.job(bob)
    listed = (await client.get("/api/v1/roadmaps", headers=alice.headers)).json()
    assert listed["items"] == []
    assert (
        await client.get(f"/api/v1/roadmaps/{uuid.uuid4()}", headers=alice.headers)
    ).status_code == 404
