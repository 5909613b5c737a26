"""Promise 15: login throttling; password hashes are argon2id at or above OWASP's parameters
(m >= 19456 KiB, t >= 2, p >= 1)."""

from __future__ import annotations

import re

import httpx

from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.inproc import login, new_user
from tests.support.sentinels import new_password

MAX_FAILURES = 3  # login_max_failures of the in-process app (tests/conftest.py)
ARGON2 = re.compile(
    r"^\$(?P<variant>argon2(?:id|i|d))\$v=(?P<v>\d+)\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$"
)


async def test_p15_login_throttled_after_repeated_failures(
    api: httpx.AsyncClient, capture: Capture
) -> None:
    user = await new_user(api, capture.secrets)
    other = await new_user(api, capture.secrets)
    wrong = new_password()
    capture.secrets.add(wrong)

    for _ in range(MAX_FAILURES):
        answer = await login(api, user.email, wrong)
        assert answer.status_code == 401
    throttled = await login(api, user.email, wrong)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    # While throttled even the right password is refused: guessing cannot go on.
    assert (await login(api, user.email, user.password)).status_code == 429
    # Another account is not locked by someone hammering this one.
    assert (await login(api, other.email, other.password)).status_code == 200

    # Unknown accounts are throttled the same way and answer like wrong passwords.
    unknown = "nobody-here@example.com"
    first = await login(api, unknown, wrong)
    wrong_password = await login(api, other.email, wrong)
    assert first.status_code == wrong_password.status_code == 401
    assert first.json()["detail"] == wrong_password.json()["detail"]
    for _ in range(MAX_FAILURES - 1):
        await login(api, unknown, wrong)
    assert (await login(api, unknown, wrong)).status_code == 429


async def test_p15_password_hashes_argon2id_at_or_above_owasp_parameters(
    api: httpx.AsyncClient, db: Db, capture: Capture
) -> None:
    user = await new_user(api, capture.secrets)
    rows = await db.fetch("SELECT email, password_hash FROM users")
    assert len(rows) == 2  # the user and the bootstrapped admin
    for row in rows:
        parsed = ARGON2.match(row["password_hash"])
        assert parsed, row["email"]
        assert parsed["variant"] == "argon2id"
        assert int(parsed["v"]) >= 19
        assert int(parsed["m"]) >= 19456
        assert int(parsed["t"]) >= 2
        assert int(parsed["p"]) >= 1
        assert user.password not in row["password_hash"]
    # Salted: two users with the same password still get different hashes.
    twin = await api.post(
        "/api/v1/auth/register",
        json={"email": "twin@example.com", "password": user.password},
    )
    assert twin.status_code == 201
    hashes = await db.fetch(
        "SELECT password_hash FROM users WHERE email IN ($1, 'twin@example.com')", user.email
    )
    assert len({h["password_hash"] for h in hashes}) == 2
