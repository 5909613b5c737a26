"""The typed client (``roadmap_client``) against the real API app, in-process
(httpx.ASGITransport), real Postgres/Redis.

Calls that need a worker (content, regenerate, quiz) are exercised against a running stack in
test_stack_lifecycle.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from roadmap_api.main import create_app
from roadmap_api.settings import ApiSettings
from roadmap_client import ApiError, AsyncRoadmapClient, Conflict, NotFound, ValidationFailed
from roadmap_client.models import CancelledEvent
from roadmap_db.testing import migrate_to_head, truncate_all

PASSWORD = "correct horse battery"
REQUEST = {"goal": "Learn SQL", "level": "beginner", "weekly_hours": 3, "weeks": 2}


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await migrate_to_head(database_url)
    return database_url


@pytest.fixture
async def app_transport(migrated_url: str, redis_url: str) -> AsyncIterator[httpx.ASGITransport]:
    await truncate_all(migrated_url)
    settings = ApiSettings(
        database_url=migrated_url,
        redis_url=redis_url,
        jwt_secret_key=SecretStr("x" * 40),
        register_ip_max=1000,
        log_json=False,
        access_log=False,
        metrics_multiprocess=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app)


@pytest.fixture
async def anon(app_transport: httpx.ASGITransport) -> AsyncIterator[AsyncRoadmapClient]:
    async with AsyncRoadmapClient("http://api.test", transport=app_transport) as client:
        yield client


async def signed_in(transport: httpx.ASGITransport, email: str) -> AsyncRoadmapClient:
    client = AsyncRoadmapClient("http://api.test", transport=transport)
    await client.register(email, PASSWORD, display_name="Learner")
    await client.login(email, PASSWORD)
    return client


async def test_register_login_me_and_api_keys(
    anon: AsyncRoadmapClient, app_transport: httpx.ASGITransport
) -> None:
    user = await anon.register("ada@example.com", PASSWORD, display_name="Ada")
    assert user.email == "ada@example.com"
    assert user.display_name == "Ada"
    assert not user.is_admin

    with pytest.raises(ApiError) as duplicate:
        await anon.register("ada@example.com", PASSWORD)
    assert duplicate.value.status == 409
    assert duplicate.value.problem.status == 409
    assert isinstance(duplicate.value, Conflict)

    with pytest.raises(ApiError) as wrong:
        await anon.login("ada@example.com", "not the password at all")
    assert wrong.value.status == 401

    token = await anon.login("ada@example.com", PASSWORD)
    assert token.token_type == "bearer"
    assert token.expires_in
    assert (await anon.me()).id == user.id

    created = await anon.create_api_key("laptop")
    assert created.key
    assert created.name == "laptop"
    async with AsyncRoadmapClient(
        "http://api.test", token=created.key, transport=app_transport
    ) as by_key:
        assert (await by_key.me()).id == user.id
        assert [k.id for k in (await anon.list_api_keys()).items] == [created.id]
        await anon.delete_api_key(created.id)
        with pytest.raises(ApiError) as revoked:
            await by_key.me()
        assert revoked.value.status == 401


async def test_roadmap_lifecycle_calls(app_transport: httpx.ASGITransport) -> None:
    client = await signed_in(app_transport, "grace@example.com")
    try:
        accepted = await client.create_roadmap(**REQUEST)
        assert accepted.status == "queued"
        assert accepted.links.events == f"/api/v1/roadmaps/{accepted.id}/events"

        page = await client.list_roadmaps(limit=10)
        assert [item.id for item in page.items] == [accepted.id]
        assert page.items[0].goal == "Learn SQL"

        roadmap = await client.get_roadmap(accepted.id)
        assert roadmap.status == "queued"
        assert roadmap.framework is None
        assert roadmap.request.goal == "Learn SQL"
        raw = await client.get_roadmap_json(accepted.id)
        assert raw["id"] == str(accepted.id)

        assert (await client.logs(accepted.id)).items == []
        assert await client.count_logs(accepted.id) == 0

        with pytest.raises(ApiError) as not_failed:
            await client.retry(accepted.id)
        assert not_failed.value.status == 409
        with pytest.raises(ApiError) as not_in_review:
            await client.review(accepted.id, approve=True)
        assert not_in_review.value.status == 409

        cancelled = await client.cancel(accepted.id)
        assert cancelled.id == accepted.id
        events = [event async for event in client.events(accepted.id)]
        assert [e.type for e in events] == ["snapshot", "cancelled"]
        assert events[-1].is_terminal
        assert isinstance(events[-1].data, CancelledEvent)
        # Resuming after the end: the server answers 204 and the follow ends at once.
        after = [e async for e in client.events(accepted.id, last_event_id=events[-1].id)]
        assert after == []
        assert (await client.wait(accepted.id, max_wait=5)).status == "cancelled"

        await client.delete_roadmap(accepted.id)
        with pytest.raises(ApiError) as gone:
            await client.get_roadmap(accepted.id)
        assert gone.value.status == 404
    finally:
        await client.aclose()


async def test_errors_carry_the_problem_body(app_transport: httpx.ASGITransport) -> None:
    client = await signed_in(app_transport, "linus@example.com")
    other = await signed_in(app_transport, "margaret@example.com")
    try:
        with pytest.raises(ApiError) as unknown_field:
            await client.create_roadmap(**REQUEST, colour="blue")
        assert unknown_field.value.status == 422
        assert isinstance(unknown_field.value, ValidationFailed)
        assert [e.loc for e in unknown_field.value.problem.errors or []] == [["body", "colour"]]

        mine = await client.create_roadmap(**REQUEST)
        with pytest.raises(ApiError) as foreign:
            await other.get_roadmap(mine.id)
        assert foreign.value.status == 404
        assert isinstance(foreign.value, NotFound)
        assert "404" in str(foreign.value)
        with pytest.raises(ApiError) as missing_concept:
            await client.get_concept(mine.id, uuid.uuid4())
        assert missing_concept.value.status == 404
    finally:
        await client.aclose()
        await other.aclose()
