"""Issue 14, item 11 (protocol details), against the real processes.

- ``Last-Event-ID`` that is malformed or out of range → 400 problem (never a stream that
  silently starts over, fails mid-way or waits forever);
- resuming a finished job's stream at (or beyond) its terminal event answers at once,
  ``204 No Content`` (the EventSource standard's signal to stop reconnecting);
- 405 answers list every allowed method of the path in ``Allow``.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.support.capture import Capture
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

API = "/api/v1"


def register(client: httpx.Client, capture: Capture) -> dict[str, str]:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    capture.secrets.add(password)
    assert (
        client.post(f"{API}/auth/register", json={"email": email, "password": password})
    ).status_code == 201
    token = client.post(f"{API}/auth/token", data={"username": email, "password": password}).json()[
        "access_token"
    ]
    capture.secrets.add(token)
    return {"Authorization": f"Bearer {token}"}


def follow_to_the_end(client: httpx.Client, url: str, auth: dict[str, str]) -> list[str]:
    """Read the stream until its terminal event; returns the ids of the events seen."""
    ids: list[str] = []
    event = entry = ""
    with client.stream("GET", url, headers=auth, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("id:"):
                entry = line.partition(":")[2].strip()
            elif line == "" and event:
                ids.append(entry)
                if event in ("completed", "failed", "cancelled"):
                    return ids
                event = ""
    raise AssertionError(f"the stream ended without a terminal event: {ids}")


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_last_event_id_checked_and_finished_streams_answer_204(
    stack: Stack, capture: Capture
) -> None:
    stack.start(content_workers=1, logs_worker=False)
    assert stack.api is not None
    with httpx.Client(base_url=stack.api.url, timeout=10) as client:
        auth = register(client, capture)
        job = client.post(f"{API}/roadmaps", json=small_request(), headers=auth)
        assert job.status_code == 202, job.text
        url = f"{API}/roadmaps/{job.json()['id']}/events"

        for malformed in ("abc", "1-2-3", "12345", "-1-0", "1-", "1" * 65, "0x10-0"):
            answer = client.get(url, headers={**auth, "Last-Event-ID": malformed})
            assert_problem(answer, 400)
            assert "Last-Event-ID" in answer.json()["detail"]
        future_ms = int(time.time() * 1000) + 10 * 86_400_000
        for out_of_range in ("99999999999999999999-0", "1-99999999999999999999", f"{future_ms}-0"):
            answer = client.get(url, headers={**auth, "Last-Event-ID": out_of_range})
            assert_problem(answer, 400)

        ids = follow_to_the_end(client, url, auth)
        terminal = ids[-1]
        ms, _, seq = terminal.partition("-")
        for resume in (terminal, f"{ms}-{int(seq) + 1}"):
            started = time.monotonic()
            answer = client.get(url, headers={**auth, "Last-Event-ID": resume}, timeout=10)
            elapsed = time.monotonic() - started
            assert answer.status_code == 204, (resume, answer.status_code, answer.text[:500])
            assert answer.content == b""
            assert elapsed < 5, elapsed  # at once, not after an idle re-check


def test_405_lists_every_allowed_method(stack: Stack, capture: Capture) -> None:
    stack.start(content_workers=0, logs_worker=False)
    assert stack.api is not None
    with httpx.Client(base_url=stack.api.url, timeout=10) as client:
        auth = register(client, capture)
        some_id = uuid.uuid4()
        cases = {
            ("PUT", f"{API}/roadmaps/{some_id}"): {"GET", "DELETE"},
            ("PATCH", f"{API}/roadmaps"): {"GET", "POST"},
            ("GET", f"{API}/roadmaps/{some_id}/cancel"): {"POST"},
            ("DELETE", f"{API}/me/api-keys"): {"GET", "POST"},
            ("POST", "/healthz"): {"GET"},
        }
        for (method, path), allowed in cases.items():
            answer = client.request(method, path, headers=auth)
            assert_problem(answer, 405)
            listed = {m.strip() for m in answer.headers["allow"].split(",")}
            # HEAD comes with GET; OPTIONS may be listed where CORS answers it.
            assert allowed <= listed <= allowed | {"HEAD", "OPTIONS"}, (method, path, listed)
