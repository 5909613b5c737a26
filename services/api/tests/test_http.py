"""Cross-cutting HTTP behaviour: problem details, request ids, CORS, outages, access logs."""

from __future__ import annotations

import json
import logging
import time

import asyncpg
import httpx
import pytest

from roadmap_api.logging_setup import JsonFormatter
from roadmap_api.testing import Account, Seeder, problem, request_body
from roadmap_core.domain import JobStatus

from .conftest import AppFactory, client_for


async def test_unknown_path_and_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["title"] == "Not Found"
    wrong = await client.patch("/api/v1/roadmaps")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    assert "POST" in wrong.headers["Allow"]


async def test_request_id_is_echoed_or_assigned(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    assigned = await client.get("/healthz")
    assert len(assigned.headers["X-Request-ID"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    assert hostile.headers["X-Request-ID"] != "x" * 200
    problem = await client.get("/api/v1/me", headers={"X-Request-ID": "req-42"})
    assert problem.json()["request_id"] == "req-42"


async def test_cors(app_factory: AppFactory) -> None:
    app = await app_factory(cors_origins="https://app.example.com, https://admin.example.com")
    async with client_for(app) as client:
        allowed = await client.options(
            "/api/v1/roadmaps",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        denied = await client.get("/healthz", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in denied.headers


async def test_database_down_is_503(app_factory: AppFactory, alice: Account) -> None:
    app = await app_factory(database_url="postgresql://postgres@127.0.0.1:9/none")
    async with client_for(app) as client:
        start = time.monotonic()
        for method, path, body in [
            ("GET", "/api/v1/me", None),
            ("POST", "/api/v1/roadmaps", request_body()),
            ("GET", "/api/v1/roadmaps", None),
        ]:
            response = await client.request(method, path, json=body, headers=alice.headers)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["Retry-After"] == "5"
        assert time.monotonic() - start < 10


async def test_statement_timeout_is_503_not_a_hang(
    app_factory: AppFactory, alice: Account, seed: Seeder, migrated_url: str
) -> None:
    app = await app_factory(db_statement_timeout_ms=300)
    job = await seed.job(alice, status=JobStatus.generating)
    blocker = await asyncpg.connect(migrated_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT 1 FROM roadmap_jobs WHERE id = $1 FOR UPDATE", job.id)
        async with client_for(app) as client:
            start = time.monotonic()
            response = await client.post(f"/api/v1/roadmaps/{job.id}/cancel", headers=alice.headers)
            assert time.monotonic() - start < 5
        assert response.status_code == 503, response.text
        await transaction.rollback()
    finally:
        await blocker.close()
    assert (await seed.get_job(job.id)).status is JobStatus.generating


async def test_pool_exhaustion_is_503(app_factory: AppFactory, alice: Account) -> None:
    app = await app_factory(db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.2)
    engine = app.state.services.db.engine
    async with engine.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        async with client_for(app) as client:
            response = await client.get("/api/v1/me", headers=alice.headers)
    assert response.status_code == 503


async def test_access_log_has_template_not_secrets(
    client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="roadmap_api.access")
    job_id = (
        await client.post("/api/v1/roadmaps", json=request_body(), headers=alice.headers)
    ).json()["id"]
    await client.get(
        f"/api/v1/roadmaps/{job_id}?token=leaked", headers={**alice.headers, "X-Request-ID": "r-1"}
    )
    await client.post(
        "/api/v1/auth/token", data={"username": alice.email, "password": "pw-in-body-123"}
    )
    records = [r for r in caplog.records if r.name == "roadmap_api.access"]
    assert [(r.method, r.route, r.status) for r in records] == [  # type: ignore[attr-defined]
        ("POST", "/api/v1/roadmaps", 202),
        ("GET", "/api/v1/roadmaps/{roadmap_id}", 200),
        ("POST", "/api/v1/auth/token", 401),
    ]
    lines = [JsonFormatter().format(r) for r in caplog.records]
    text = "\n".join(lines)
    for secret in (alice.token, "leaked", "pw-in-body-123", job_id):
        assert secret not in text
    second = json.loads(lines[[r.route for r in records].index("/api/v1/roadmaps/{roadmap_id}")])  # type: ignore[attr-defined]
    assert second["user_id"] == str(alice.id)
    assert second["duration_ms"] >= 0


async def test_openapi_describes_problems(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/api/v1/roadmaps"]["post"]
    assert set(operation["responses"]) >= {"202", "401", "413", "422", "429", "503"}
    for code in ("401", "422", "429"):
        assert list(operation["responses"][code]["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["securitySchemes"]) == {"accessToken", "apiKey", "metricsToken"}


async def test_malformed_json_is_400_as_documented(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.post(
        "/api/v1/roadmaps",
        content=b'{"goal": "Learn SQL",',
        headers={**alice.headers, "content-type": "application/json"},
    )
    body = problem(response, 400)
    assert body["detail"] == "The request body is not valid JSON."
    schema = (await client.get("/openapi.json")).json()
    assert "400" in schema["paths"]["/api/v1/roadmaps"]["post"]["responses"]


async def test_unexpected_database_error_is_500_without_parameters(
    client: httpx.AsyncClient,
    alice: Account,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sqlalchemy.exc import IntegrityError

    from roadmap_db.repositories import users

    async def broken(*args: object, **kwargs: object) -> None:
        raise IntegrityError(
            "UPDATE users SET password_hash=%(h)s", {"h": "argon2-hash-value"}, Exception("boom")
        )

    monkeypatch.setattr(users, "get_user", broken)
    response = await client.get("/api/v1/me", headers=alice.headers)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "argon2-hash-value" not in response.text
    logged = "\n".join(
        JsonFormatter().format(r) for r in caplog.records if r.name == "roadmap_api.errors"
    )
    assert "unhandled error" in logged
    assert "argon2-hash-value" not in logged
