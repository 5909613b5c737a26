"""Requests the benchmarks send to the API, and waiting for roadmaps to finish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg
import httpx

from bench.lib.loadgen import Request

API = "/api/v1"
TERMINAL = frozenset({"completed", "partial_failure", "failed", "cancelled"})

# The issue's example request: a mid-sized roadmap, the same for every benchmark and mode.
ROADMAP_BODY: dict[str, Any] = {
    "goal": "Learn Rust for embedded work",
    "level": "intermediate",
    "weekly_hours": 6,
    "weeks": 12,
    "language": "en",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_request(base_url: str, token: str | None) -> Request:
    return Request("POST", f"{base_url}{API}/roadmaps", ROADMAP_BODY, auth(token) if token else {})


def creates(base_url: str, token: str | None) -> Callable[[int], Request]:
    """A request factory for the load generators: every request the same POST."""
    request = create_request(base_url, token)
    return lambda _i: request


def reads(base_url: str, token: str, job_id: str) -> Callable[[int], Request]:
    request = read_request(base_url, token, job_id)
    return lambda _i: request


def read_request(base_url: str, token: str, job_id: str) -> Request:
    return Request("GET", f"{base_url}{API}/roadmaps/{job_id}", None, auth(token))


async def submit(client: httpx.AsyncClient, base_url: str, token: str, count: int) -> list[str]:
    """POST `count` roadmaps at once; their ids."""
    responses = await asyncio.gather(
        *(
            client.post(f"{base_url}{API}/roadmaps", json=ROADMAP_BODY, headers=auth(token))
            for _ in range(count)
        )
    )
    ids = []
    for response in responses:
        if response.status_code != 202:
            raise RuntimeError(f"POST /roadmaps answered {response.status_code}: {response.text}")
        ids.append(str(response.json()["id"]))
    return ids


async def statuses(
    client: httpx.AsyncClient, base_url: str, token: str, ids: Iterable[str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for job_id in ids:
        response = await client.get(f"{base_url}{API}/roadmaps/{job_id}", headers=auth(token))
        response.raise_for_status()
        out[job_id] = str(response.json()["status"])
    return out


async def wait_terminal(
    client: httpx.AsyncClient,
    base_url: str,
    token: str,
    ids: list[str],
    *,
    timeout_s: float,
    poll_s: float = 0.25,
) -> dict[str, str]:
    """Poll until every job is terminal; raise with the statuses seen if the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = await statuses(client, base_url, token, ids)
        if all(s in TERMINAL for s in seen.values()):
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"roadmaps not finished within {timeout_s:.0f}s: {seen}")
        await asyncio.sleep(poll_s)


def plain_client(timeout_s: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout_s, trust_env=False)


async def unfinished_in_db(conn: asyncpg.Connection, ids: list[str]) -> int:
    """How many of these jobs are not terminal, read from the database.

    Watching progress this way adds no request to the API whose latency is being measured.
    """
    count = await conn.fetchval(
        "SELECT count(*) FROM roadmap_jobs WHERE id = ANY($1::uuid[]) "
        "AND NOT (status::text = ANY($2::text[]))",
        ids,
        sorted(TERMINAL),
    )
    return int(count or 0)


async def make_users(database_url: str, jwt_secret: str, count: int) -> list[str]:
    """`count` users written straight into the database, and an access token for each.

    A real API serves many users, and one user's submits are serialised by its quota
    lock, so a load from one user would measure that lock. Registering through the API
    would cost two argon2 hashes per user; the tokens here are minted by the API's own
    issuer with the stack's JWT secret, so the API accepts them exactly like its own.
    """
    from roadmap_api.auth.tokens import issue_access_token
    from roadmap_api.settings import ApiSettings
    from roadmap_core.ids import new_id

    settings = ApiSettings(jwt_secret_key=jwt_secret)
    ids = [new_id() for _ in range(count)]
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        await conn.executemany(
            # "!" is never a valid argon2 hash: nobody can log in as these users.
            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, '!')",
            [(uid, f"bench-{uid.hex}@example.com") for uid in ids],
        )
    finally:
        await conn.close()
    return [issue_access_token(settings, uid, 0).token for uid in ids]


def creates_as(base_url: str, tokens: Sequence[str]) -> Callable[[int], Request]:
    """POST requests that take turns over the users' tokens."""
    prepared = [create_request(base_url, token) for token in tokens]
    return lambda i: prepared[i % len(prepared)]


def create_requests(base_url: str, tokens: Sequence[str]) -> list[Request]:
    return [create_request(base_url, token) for token in tokens]
