"""Users and rows for tests that call the API in-process (httpx + ASGITransport)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from roadmap_core.domain import ItemStatus
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.frameworks import replace_framework
from roadmap_db.testing import settings_for
from roadmap_worker_content.testing import make_framework
from tests.support.sentinels import SecretRegistry, new_password

API = "/api/v1"


@dataclass(frozen=True)
class ApiUser:
    id: uuid.UUID
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def login(api: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await api.post(f"{API}/auth/token", data={"username": email, "password": password})


async def new_user(api: httpx.AsyncClient, secrets: SecretRegistry) -> ApiUser:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = new_password()
    secrets.add(password)
    created = await api.post(f"{API}/auth/register", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    token = await login(api, email, password)
    assert token.status_code == 200, token.text
    return ApiUser(uuid.UUID(created.json()["id"]), email, password, token.json()["access_token"])


async def as_admin(api: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    answer = await login(api, email, password)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def roadmap_body(**overrides: object) -> dict[str, object]:
    return {
        "goal": f"Learn SQL joins, track {uuid.uuid4().hex[:8]}",
        "level": "beginner",
        "weekly_hours": 2,
        "weeks": 2,
        **overrides,
    }


async def submit(api: httpx.AsyncClient, user: ApiUser, **overrides: object) -> uuid.UUID:
    answer = await api.post(f"{API}/roadmaps", json=roadmap_body(**overrides), headers=user.headers)
    assert answer.status_code == 202, answer.text
    return uuid.UUID(answer.json()["id"])


async def add_framework(database_url: str, job_id: uuid.UUID, concepts: int = 2) -> list[uuid.UUID]:
    """Give a job a framework (as the planner would) without running a worker."""
    db = ProcessDatabase(settings_for(database_url), "roadmap-tests")
    try:
        async with db.transaction() as session:
            return list(
                await replace_framework(
                    session, job_id, make_framework(concepts), item_status=ItemStatus.queued
                )
            )
    finally:
        await db.dispose()
