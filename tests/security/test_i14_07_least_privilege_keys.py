"""Issue 14, item 7: API keys are least-privilege.

Managing credentials takes a password login (an access token, not a key); a user holds
at most ``API_KEYS_MAX_PER_USER`` active keys; changing the password (current + new)
revokes every token issued before it (access tokens and API keys); a disabled user's open
event streams end within 30 s. Before: a key minted keys that outlived its own revocation,
one user reached 62 keys, there was no password change, and streams of a disabled user
went on.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.http import api_client
from tests.support.inproc import API, ApiUser, new_user, roadmap_body
from tests.support.sentinels import new_password
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

KEY_CAP = 20  # API_KEYS_MAX_PER_USER default
STREAM_END_BOUND_S = 30.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_key(http: httpx.AsyncClient, token: str, name: str) -> httpx.Response:
    return await http.post(f"{API}/me/api-keys", json={"name": name}, headers=bearer(token))


async def open_stream_until_closed(http: httpx.AsyncClient, user: ApiUser, job: str) -> float:
    """Follow a roadmap's event stream; the time at which the server closed it."""
    async with http.stream(
        "GET", f"{API}/roadmaps/{job}/events", headers=user.headers, timeout=None
    ) as stream:
        assert stream.status_code == 200
        async for _ in stream.aiter_bytes():
            pass
    return time.monotonic()


async def test_i14_07_keys_cannot_manage_credentials_are_capped_and_a_password_change_revokes_all(
    stack: Stack, db: Db, capture: Capture
) -> None:
    # No content worker: the roadmaps stay queued and their streams stay open.
    stack.start(content_workers=0, logs_worker=False)
    assert stack.api is not None
    async with api_client(stack.api.url, capture) as http:
        alice = await new_user(http, capture.secrets)
        bob = await new_user(http, capture.secrets)

        made = await create_key(http, alice.token, "ci")
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        capture.secrets.add(key)
        # A key works for the API...
        assert (await http.get(f"{API}/me", headers=bearer(key))).status_code == 200
        submitted = await http.post(f"{API}/roadmaps", json=roadmap_body(), headers=bearer(key))
        assert submitted.status_code == 202, submitted.text
        # ...but cannot manage credentials.
        assert (await create_key(http, key, "minted")).status_code == 403
        assert (await http.get(f"{API}/me/api-keys", headers=bearer(key))).status_code == 403
        own_id = made.json()["id"]
        deleted = await http.delete(f"{API}/me/api-keys/{own_id}", headers=bearer(key))
        assert deleted.status_code == 403
        changed = await http.post(
            f"{API}/me/password",
            json={"current_password": alice.password, "new_password": new_password()},
            headers=bearer(key),
        )
        assert changed.status_code == 403

        # At most KEY_CAP active keys, even when asked for many at once.
        burst = await asyncio.gather(
            *(create_key(http, alice.token, f"k{i}") for i in range(KEY_CAP + 10))
        )
        codes = Counter(a.status_code for a in burst)
        assert codes == {201: KEY_CAP - 1, 409: 11}, codes
        capture.secrets.add(*(a.json()["key"] for a in burst if a.status_code == 201))
        active = await db.fetchval(
            "SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL", alice.id
        )
        assert active == KEY_CAP

        # Streams that must end: alice's when she changes her password, bob's when disabled.
        job_a = await http.post(f"{API}/roadmaps", json=roadmap_body(), headers=alice.headers)
        job_b = await http.post(f"{API}/roadmaps", json=roadmap_body(), headers=bob.headers)
        streams = [
            asyncio.create_task(open_stream_until_closed(http, alice, job_a.json()["id"])),
            asyncio.create_task(open_stream_until_closed(http, bob, job_b.json()["id"])),
        ]
        await asyncio.sleep(1.0)
        assert not any(s.done() for s in streams), [s.result() for s in streams if s.done()]

        fresh = new_password()
        capture.secrets.add(fresh)
        wrong = await http.post(
            f"{API}/me/password",
            json={"current_password": fresh, "new_password": new_password()},
            headers=alice.headers,
        )
        assert wrong.status_code == 401
        changed_at = time.monotonic()
        changed = await http.post(
            f"{API}/me/password",
            json={"current_password": alice.password, "new_password": fresh},
            headers=alice.headers,
        )
        assert changed.status_code == 200, changed.text
        new_token = changed.json()["access_token"]
        capture.secrets.add(new_token)
        await db.execute("UPDATE users SET is_active = false WHERE id = $1", bob.id)
        disabled_at = time.monotonic()

        # Every token issued before the change is refused, on the hot path too.
        assert (await http.get(f"{API}/me", headers=alice.headers)).status_code == 401
        old_submit = await http.post(f"{API}/roadmaps", json=roadmap_body(), headers=alice.headers)
        assert old_submit.status_code == 401, old_submit.text
        assert (await http.get(f"{API}/me", headers=bearer(key))).status_code == 401
        keys = await http.get(f"{API}/me/api-keys", headers=bearer(new_token))
        assert keys.status_code == 200
        assert all(k["revoked_at"] is not None for k in keys.json()["items"])
        # The new token works, and so does the new password.
        assert (await http.get(f"{API}/me", headers=bearer(new_token))).status_code == 200
        login = await http.post(
            f"{API}/auth/token", data={"username": alice.email, "password": fresh}
        )
        assert login.status_code == 200

        closed_a, closed_b = await asyncio.wait_for(
            asyncio.gather(*streams), timeout=STREAM_END_BOUND_S + 10
        )
    assert closed_a - changed_at <= STREAM_END_BOUND_S, closed_a - changed_at
    assert closed_b - disabled_at <= STREAM_END_BOUND_S, closed_b - disabled_at
