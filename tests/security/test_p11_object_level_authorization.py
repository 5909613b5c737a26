"""Promise 11: every route with an id, for another user's id → 404; admin routes → 403 for
non-admins (OWASP API1:2023 broken object level authorization, API5 function level).

Routes come from the app's OpenAPI document, so a new route cannot be missed: a path
parameter or request body this test does not know makes it fail until it is taught.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.capture import Capture
from tests.support.inproc import API, ApiUser, add_framework, as_admin, new_user, submit
from tests.support.sentinels import SessionSecrets

# A valid body for every operation that takes one: validation must pass so that the
# ownership check is what answers.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/roadmaps/{roadmap_id}/review"): {"approve": True},
    ("post", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/regenerate"): {
        "kinds": ["tutorial"]
    },
    ("put", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/progress"): {"status": "done"},
    ("post", "/api/v1/roadmaps/{roadmap_id}/concepts/{concept_id}/quiz/attempts"): {"answers": [0]},
    ("post", "/api/v1/roadmaps/{roadmap_id}/chat/messages"): {"content": "What next?"},
}
ADMIN_PREFIX = "/api/v1/admin"
REQUEST_BOUND_S = 10.0


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def fill(path: str, ids: dict[str, str]) -> str:
    params = [p.split("}")[0] for p in path.split("{")[1:]]
    unknown = [p for p in params if p not in ids]
    assert not unknown, f"{path}: teach this test the path parameter(s) {unknown}"
    for name in params:
        path = path.replace("{" + name + "}", ids[name])
    return path


async def call(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    op: dict[str, Any],
    user: ApiUser,
    ids: dict[str, str],
) -> httpx.Response:
    body = BODIES.get((method, path))
    if "requestBody" in op:
        assert body is not None, f"{method.upper()} {path}: add a valid body to BODIES"
    return await asyncio.wait_for(
        api.request(method, fill(path, ids), json=body, headers=user.headers), REQUEST_BOUND_S
    )


async def test_p11_other_users_ids_404_on_every_id_route_admin_routes_403(
    api: httpx.AsyncClient,
    asgi_app: FastAPI,
    clean_state: str,
    capture: Capture,
    session_secrets: SessionSecrets,
) -> None:
    owner = await new_user(api, capture.secrets)
    intruder = await new_user(api, capture.secrets)
    job = await submit(api, owner)
    concept = (await add_framework(clean_state, job))[0]
    key = await api.post(f"{API}/me/api-keys", json={"name": "ci"}, headers=owner.headers)
    assert key.status_code == 201
    owners_ids = {"roadmap_id": str(job), "concept_id": str(concept), "key_id": key.json()["id"]}
    nobodys_ids = {name: str(uuid.uuid4()) for name in owners_ids}

    id_routes = [
        (m, p, op)
        for m, p, op in operations(asgi_app)
        if "{" in p and not p.startswith(ADMIN_PREFIX)
    ]
    assert len(id_routes) >= 10, id_routes  # the API has at least this many; none vanished
    for method, path, op in id_routes:
        theirs = await call(api, method, path, op, intruder, owners_ids)
        missing = await call(api, method, path, op, intruder, nobodys_ids)
        assert theirs.status_code == 404, (method, path, theirs.status_code, theirs.text)
        # Someone else's id and no id at all look the same: nothing to enumerate.
        assert missing.status_code == 404, (method, path, missing.status_code)
        assert theirs.json()["type"] == missing.json()["type"]
        assert theirs.json().get("detail") == missing.json().get("detail")

    # Nothing the intruder did reached the owner's objects.
    mine = await api.get(f"{API}/roadmaps/{job}", headers=owner.headers)
    assert mine.status_code == 200
    assert mine.json()["status"] == "queued"
    concept_view = await api.get(f"{API}/roadmaps/{job}/concepts/{concept}", headers=owner.headers)
    assert concept_view.status_code == 200
    assert concept_view.json()["progress"] == "not_started"
    chat = await api.get(f"{API}/roadmaps/{job}/chat/messages", headers=owner.headers)
    assert chat.status_code == 200
    assert chat.json()["items"] == []
    via_key = await api.get(f"{API}/me", headers={"Authorization": f"Bearer {key.json()['key']}"})
    assert via_key.status_code == 200
    assert via_key.json()["id"] == str(owner.id)

    admin_routes = [(m, p, op) for m, p, op in operations(asgi_app) if p.startswith(ADMIN_PREFIX)]
    assert admin_routes
    admin = await as_admin(api, session_secrets.admin_email, session_secrets.admin_password)
    for method, path, _ in admin_routes:
        assert "{" not in path, f"{path}: teach this test the admin route's parameters"
        refused = await api.request(method, path, headers=owner.headers)
        assert refused.status_code == 403, (method, path, refused.status_code)
        anonymous = await api.request(method, path)
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        allowed = await api.request(method, path, headers=admin)
        assert allowed.status_code == 200, (method, path, allowed.status_code, allowed.text)
