"""Registration, login (and its throttle), /me, API keys, token validation."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from roadmap_api.settings import ApiSettings
from roadmap_api.testing import PASSWORD, TEST_SECRET, Account, Seeder, problem

from .conftest import AppFactory, client_for

STRONG = "tangerine-orbit-cascade-7"


async def register(
    client: httpx.AsyncClient, email: str, password: str = STRONG, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, **extra}
    )


async def login(client: httpx.AsyncClient, email: str, password: str = STRONG) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def test_register_login_and_me(client: httpx.AsyncClient) -> None:
    created = await register(client, "New.User@Example.com", display_name="New User")
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "new.user@example.com"
    assert user["display_name"] == "New User"
    assert user["is_admin"] is False
    assert "password" not in created.text
    assert "hash" not in created.text

    token = await login(client, "NEW.user@example.com")
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    claims = jwt.decode(
        body["access_token"], TEST_SECRET, algorithms=["HS256"], audience="roadmap-agent-api"
    )
    assert claims["sub"] == user["id"]
    assert claims["iss"] == "roadmap-agent"

    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_duplicate_email_is_a_conflict(client: httpx.AsyncClient) -> None:
    assert (await register(client, "dup@example.com")).status_code == 201
    problem(await register(client, "DUP@example.com"), 409)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw-1", "at least 12"),
        ("aaaaaaaaaaaaaaaa", "different characters"),
        ("abababababababab", "different characters"),
        ("password1234", "too common"),
        ("someone@example.com", "email"),
        ("xx-someone-xx-2024", "email"),
        ("x" * 5 + "y" * 124, "at most 128"),
    ],
)
async def test_password_policy(client: httpx.AsyncClient, password: str, reason: str) -> None:
    body = problem(await register(client, "someone@example.com", password), 422)
    assert any(reason in e["msg"] for e in body["errors"]), body
    assert password not in str(body)


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "x@example.com", "password": STRONG, "is_admin": True},
        {"email": "not-an-email", "password": STRONG},
        {"password": STRONG},
        {"email": "x@example.com", "password": STRONG, "display_name": "n" * 101},
    ],
)
async def test_register_rejects_bad_input(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    body = problem(await client.post("/api/v1/auth/register", json=payload), 422)
    assert body["errors"]
    assert STRONG not in str(body)


async def test_wrong_credentials_are_401(client: httpx.AsyncClient, alice: Account) -> None:
    body = problem(await login(client, alice.email, "not-the-password-at-all"), 401)
    assert "WWW-Authenticate" not in body
    problem(await login(client, "nobody@example.com", PASSWORD), 401)
    assert (await login(client, alice.email, PASSWORD)).status_code == 200


async def test_token_endpoint_validates_form(client: httpx.AsyncClient) -> None:
    problem(await client.post("/api/v1/auth/token", data={"username": "a@example.com"}), 422)
    problem(
        await client.post(
            "/api/v1/auth/token",
            data={"username": "a@example.com", "password": "x", "grant_type": "client_credentials"},
        ),
        422,
    )


async def test_login_failures_are_throttled(app_factory: AppFactory, alice: Account) -> None:
    app = await app_factory(login_max_failures=3, login_window_s=60)
    async with client_for(app) as client:
        for _ in range(3):
            problem(await login(client, alice.email, "wrong-password-123"), 401)
        throttled = problem(await login(client, alice.email, PASSWORD), 429)
        assert 0 < int((await login(client, alice.email, PASSWORD)).headers["Retry-After"]) <= 60
        assert "failed logins" in throttled["detail"]
        # Another account from the same address is not locked out by alice's failures.
        assert (await login(client, "other@example.com", "whatever-password")).status_code == 401


async def test_successful_login_resets_failures(app_factory: AppFactory, alice: Account) -> None:
    app = await app_factory(login_max_failures=2, login_window_s=60)
    async with client_for(app) as client:
        problem(await login(client, alice.email, "wrong-password-123"), 401)
        assert (await login(client, alice.email, PASSWORD)).status_code == 200
        problem(await login(client, alice.email, "wrong-password-123"), 401)
        assert (await login(client, alice.email, PASSWORD)).status_code == 200


async def test_attempts_per_address_are_throttled(app_factory: AppFactory) -> None:
    app = await app_factory(login_ip_max_attempts=2, register_ip_max=1)
    async with client_for(app) as client:
        for _ in range(2):
            problem(await login(client, "a@example.com", "wrong-password-123"), 401)
        problem(await login(client, "b@example.com", "wrong-password-123"), 429)
        assert (await register(client, "first@example.com")).status_code == 201
        problem(await register(client, "second@example.com"), 429)


async def test_me_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "iss": "roadmap-agent",
        "aud": "roadmap-agent-api",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_tokens(user_id: str) -> dict[str, str]:
    good = _claims(sub=user_id)
    unsigned_header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(
        jwt.api_jwt.PyJWT()._encode_payload(good)  # the exact bytes a real token would carry
    ).decode()
    return {
        "alg-none": f"{unsigned_header}.{payload}.",
        "wrong-signature": jwt.encode(good, "another-secret-0123456789-abcdefghijklmnop"),
        "hs512-same-key": jwt.encode(good, TEST_SECRET, algorithm="HS512"),
        "expired": jwt.encode(_claims(sub=user_id, exp=int(time.time()) - 60), TEST_SECRET),
        "wrong-audience": jwt.encode(_claims(sub=user_id, aud="someone-else"), TEST_SECRET),
        "wrong-issuer": jwt.encode(_claims(sub=user_id, iss="evil"), TEST_SECRET),
        "no-expiry": jwt.encode(_claims(sub=user_id, exp=None), TEST_SECRET),
        "no-subject": jwt.encode(_claims(sub=None), TEST_SECRET),
        "not-a-uuid-subject": jwt.encode(_claims(sub="alice"), TEST_SECRET),
        "unknown-user": jwt.encode(_claims(), TEST_SECRET),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "alg-none",
        "wrong-signature",
        "hs512-same-key",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-expiry",
        "no-subject",
        "not-a-uuid-subject",
        "unknown-user",
        "garbage",
    ],
)
async def test_invalid_tokens_are_401(client: httpx.AsyncClient, alice: Account, kind: str) -> None:
    token = _bad_tokens(str(alice.id))[kind]
    for method, path, body in [
        ("GET", "/api/v1/me", None),
        (
            "POST",
            "/api/v1/roadmaps",
            {"goal": "Learn", "level": "beginner", "weekly_hours": 2, "weeks": 1},
        ),
    ]:
        response = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        problem(response, 401)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_valid_token_shape_is_accepted(client: httpx.AsyncClient, alice: Account) -> None:
    token = jwt.encode(_claims(sub=str(alice.id)), TEST_SECRET)
    assert (
        await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200


async def test_disabled_user_token_is_401(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    from sqlalchemy import update

    from roadmap_db.models import User

    async with seed.db.transaction() as session:
        await session.execute(update(User).where(User.id == alice.id).values(is_active=False))
    problem(await client.get("/api/v1/me", headers=alice.headers), 401)


async def test_api_keys_lifecycle(client: httpx.AsyncClient, alice: Account) -> None:
    created = await client.post("/api/v1/me/api-keys", json={"name": "ci"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    key = created.json()
    secret = key["key"]
    assert secret.startswith("rmk_")
    assert key["prefix"] == secret[:12]

    listed = await client.get("/api/v1/me/api-keys", headers=alice.headers)
    assert [k["id"] for k in listed.json()["items"]] == [key["id"]]
    assert secret not in listed.text

    with_key = {"Authorization": f"Bearer {secret}"}
    me = await client.get("/api/v1/me", headers=with_key)
    assert me.status_code == 200
    assert me.json()["id"] == str(alice.id)
    submitted = await client.post(
        "/api/v1/roadmaps",
        json={"goal": "Learn Go", "level": "beginner", "weekly_hours": 3, "weeks": 2},
        headers=with_key,
    )
    assert submitted.status_code == 202
    listed = await client.get("/api/v1/me/api-keys", headers=alice.headers)
    assert listed.json()["items"][0]["last_used_at"] is not None

    revoked = await client.delete(f"/api/v1/me/api-keys/{key['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    response = await client.get("/api/v1/me", headers=with_key)
    problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert (
        await client.delete(f"/api/v1/me/api-keys/{key['id']}", headers=alice.headers)
    ).status_code == 204
    listed = await client.get("/api/v1/me/api-keys", headers=alice.headers)
    assert listed.json()["items"][0]["revoked_at"] is not None


async def test_api_key_errors(client: httpx.AsyncClient, alice: Account) -> None:
    problem(await client.delete(f"/api/v1/me/api-keys/{uuid.uuid4()}", headers=alice.headers), 404)
    problem(await client.delete("/api/v1/me/api-keys/not-a-uuid", headers=alice.headers), 422)
    problem(await client.post("/api/v1/me/api-keys", json={"name": ""}, headers=alice.headers), 422)
    problem(
        await client.post(
            "/api/v1/me/api-keys",
            json={"name": "x", "user_id": str(alice.id)},
            headers=alice.headers,
        ),
        422,
    )
    problem(await client.post("/api/v1/me/api-keys", json={"name": "x"}), 401)
    problem(await client.get("/api/v1/me", headers={"Authorization": "Bearer rmk_unknown"}), 401)


def test_production_requires_a_strong_secret() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET_KEY"):
        ApiSettings(app_env="production", jwt_secret_key="short")
    with pytest.raises(ValueError, match="JWT_SECRET_KEY"):
        ApiSettings(app_env="production", jwt_secret_key="changeme")
    assert ApiSettings(app_env="production", jwt_secret_key="k" * 40).is_production


def _token(settings: ApiSettings, user_id: uuid.UUID, exp: int) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
              "iat": now, "nbf": now, "exp": exp}  # fmt: skip
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def test_verified_tokens_are_remembered_only_until_they_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from roadmap_api.auth import tokens

    settings = ApiSettings(jwt_secret_key=TEST_SECRET)
    now = [time.time()]
    cache = tokens.AccessTokens(settings, max_tokens=2, clock=lambda: now[0])
    verified: list[str] = []
    real = tokens.verify_access_token

    def counting(settings: ApiSettings, token: str) -> tokens.TokenClaims:
        verified.append(token)
        return real(settings, token)

    monkeypatch.setattr(tokens, "verify_access_token", counting)
    user = uuid.uuid4()
    good = _token(settings, user, int(now[0]) + 60)
    assert cache.claims(good).user_id == user
    assert cache.claims(good).user_id == user
    assert verified == [good]  # the second use was answered from memory

    forged = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    for _ in range(2):  # failures are never remembered: each one is checked again
        with pytest.raises(jwt.InvalidSignatureError):
            cache.claims(forged)
    assert verified == [good, forged, forged]

    # Past its exp (and the leeway) the token is not answered from memory any more.
    now[0] += 60 + tokens.LEEWAY_S + 1
    cache.claims(good)
    assert verified == [good, forged, forged, good]


async def test_a_cached_token_of_a_disabled_user_cannot_submit(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    from sqlalchemy import update

    from roadmap_db.models import User

    assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200
    async with seed.db.transaction() as session:
        await session.execute(update(User).where(User.id == alice.id).values(is_active=False))
    body = {"goal": "Learn Go", "level": "beginner", "weekly_hours": 5, "weeks": 4}
    problem(await client.post("/api/v1/roadmaps", json=body, headers=alice.headers), 401)
    problem(await client.get("/api/v1/me", headers=alice.headers), 401)
