"""Promise 13: mass assignment — ``owner``, ``status``, ``cost`` or unknown fields in request
bodies are rejected (OWASP API3:2023 broken object property level authorization)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.inproc import API, add_framework, new_user, roadmap_body, submit

INJECTED: dict[str, Any] = {
    "owner_id": "00000000-0000-0000-0000-000000000001",
    "owner": "someone-else@example.com",
    "user_id": "00000000-0000-0000-0000-000000000001",
    "status": "completed",
    "cost_usd": 0,
    "cost": 0,
    "prompt_tokens": 0,
    "llm_calls": 0,
    "is_admin": True,
    "version": 99,
    "unexpected_field": "x",
}


def valid_bodies(ids: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        ("post", "/api/v1/auth/register"): {
            "email": f"new-{uuid.uuid4().hex[:8]}@example.com",
            "password": f"Pw-{uuid.uuid4().hex}",
        },
        ("post", "/api/v1/roadmaps"): roadmap_body(),
        ("post", "/api/v1/roadmaps/{roadmap_id}/review"): {"approve": True},
        ("post", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/regenerate"): {
            "kinds": ["tutorial"]
        },
        ("put", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/progress"): {"status": "done"},
        ("post", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/quiz/attempts"): {
            "answers": [0]
        },
        ("post", "/api/v1/roadmaps/{roadmap_id}/chat/messages"): {"content": "What next?"},
        ("post", "/api/v1/me/api-keys"): {"name": "ci"},
        ("post", "/api/v1/me/password"): {
            "current_password": "not-checked-before-validation",
            "new_password": f"Pw-{uuid.uuid4().hex}",
        },
    }


def _schema(app: FastAPI, op: dict[str, Any]) -> dict[str, Any]:
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    ref = str(schema.get("$ref", ""))
    resolved: dict[str, Any] = (
        app.openapi()["components"]["schemas"][ref.split("/")[-1]] if ref else schema
    )
    return resolved


async def test_p13_owner_status_cost_and_unknown_fields_in_bodies_rejected(
    api: httpx.AsyncClient, asgi_app: FastAPI, clean_state: str, db: Db, capture: Capture
) -> None:
    user = await new_user(api, capture.secrets)
    job = await submit(api, user)
    concept = (await add_framework(clean_state, job))[0]
    ids = {"roadmap_id": str(job), "concept_id": str(concept)}
    bodies = valid_bodies(ids)
    capture.secrets.add(bodies[("post", "/api/v1/auth/register")]["password"])

    json_ops = [
        (method, path, op)
        for path, item in asgi_app.openapi()["paths"].items()
        for method, op in item.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]
    assert {(m, p) for m, p, _ in json_ops} == set(bodies), "teach this test the new bodies"
    for method, path, op in json_ops:
        schema = _schema(asgi_app, op)
        assert schema.get("additionalProperties") is False, (method, path)
        # A body's own field of the same name (a learner's progress `status`) is not injected.
        injected = {k: v for k, v in INJECTED.items() if k not in schema.get("properties", {})}
        url = path.format(**ids)
        answer = await api.request(
            method, url, json={**bodies[(method, path)], **injected}, headers=user.headers
        )
        assert answer.status_code == 422, (method, path, answer.status_code, answer.text)
        rejected = {e["loc"][-1] for e in answer.json()["errors"] if e["type"] == "extra_forbidden"}
        assert rejected == set(injected), (method, path, rejected)

    # Nothing of it landed: one job (the valid one), still queued and owned by the user;
    # no new account, nobody promoted.
    jobs = await db.fetch("SELECT owner_id, status::text AS status, cost_usd FROM roadmap_jobs")
    assert [(j["owner_id"], j["status"]) for j in jobs] == [(user.id, "queued")]
    assert (
        await db.fetchval("SELECT count(*) FROM users WHERE is_admin") == 1
    )  # the bootstrap admin
    assert await db.fetchval("SELECT count(*) FROM users") == 2
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 0
    me = await api.get(f"{API}/me", headers=user.headers)
    assert me.json()["is_admin"] is False
