"""Promise 17: no secret (passwords, tokens, API keys, ``OPENAI_API_KEY``) appears in any log
line or error body produced during the whole suite.

Every process the suite starts gets a sentinel ``OPENAI_API_KEY``, JWT secret and admin
password; every password a test uses and every token or API key the API hands out is
registered. This test first makes traffic that carries secrets where mistakes happen
(failed logins, forged and revoked credentials, secrets in the wrong field, LLM errors),
then scans everything captured so far: process output, this process's log records, HTTP
error bodies and the execution-log rows and error columns of every test. It runs last;
the session-finish hook repeats the scan over the whole session.
"""

from __future__ import annotations

import httpx
import pytest

from roadmap_dev.fake_llm import FakeLLM
from tests.support import jwt_forge
from tests.support.capture import Capture
from tests.support.db import Db
from tests.support.sentinels import SecretRegistry, new_password
from tests.support.stack import Stack, small_request
from tests.support.state import keep_rows

pytestmark = [pytest.mark.slow, pytest.mark.secret_scan]


def test_p17_the_scanner_finds_a_planted_secret(tmp_path_factory: pytest.TempPathFactory) -> None:
    planted = new_password()
    registry = SecretRegistry()
    registry.add(planted)
    probe = Capture(tmp_path_factory.mktemp("probe"), registry)
    (probe.log_dir / "service.log").write_text(f"ok\nlogin failed for password={planted}\n")
    findings = probe.scan()
    assert [(f.where, f.line_no) for f in findings] == [("service.log", 2)]
    assert planted not in str(findings[0])


async def test_p17_no_secret_in_any_log_line_or_error_body(
    stack: Stack, db: Db, fake: FakeLLM, capture: Capture
) -> None:
    fake.configure(
        rules=[
            {"fault": "server_error", "match_schema": "Tutorial", "times": 2},
            {"fault": "rate_limit", "match_schema": "Quiz", "times": 1, "retry_after_s": 0.2},
        ]
    )
    stack.start(concurrency=2)
    assert stack.api is not None
    client, password = stack.new_user()
    email = client.me().email

    with httpx.Client(base_url=stack.api.url, timeout=15) as raw:

        def call(method: str, path: str, **kwargs: object) -> httpx.Response:
            answer = raw.request(method, path, **kwargs)  # type: ignore[arg-type]
            capture.record_response(answer.request, answer)
            return answer

        wrong = new_password()
        capture.secrets.add(wrong)
        assert (
            call(
                "POST", "/api/v1/auth/token", data={"username": email, "password": wrong}
            ).status_code
            == 401
        )
        forged = jwt_forge.hs256(
            jwt_forge.claims_for(client.me().id, issuer="x", audience="y"), new_password()
        )
        capture.secrets.add(forged)
        assert (
            call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code
            == 401
        )
        # Secrets in the wrong place: the error must not echo them back.
        leaked = call(
            "POST",
            "/api/v1/roadmaps",
            json={**small_request(), "goal": password * 20, "password": password},
            headers={"Authorization": f"Bearer {client.token}"},
        )
        assert leaked.status_code == 422
        assert password not in leaked.text
        bad_email = call(
            "POST", "/api/v1/auth/register", json={"email": "not-an-email", "password": wrong}
        )
        assert bad_email.status_code == 422
        assert wrong not in bad_email.text

        key = client.create_api_key("scan")
        assert key.key is not None
        with_key = {"Authorization": f"Bearer {key.key}"}
        job = call("POST", "/api/v1/roadmaps", json=small_request(), headers=with_key)
        assert job.status_code == 202
        client.delete_api_key(key.id)
        assert call("GET", "/api/v1/me", headers=with_key).status_code == 401

    await db.wait_jobs([job.json()["id"]], within=90, context=stack.logs)
    assert key.key in capture.secrets.snapshot()
    assert client.token in capture.secrets.snapshot()
    stack.stop()  # flushes every process's buffered logs
    await keep_rows(db.url, capture)

    findings = capture.scan()
    assert findings == [], "\n".join(map(str, findings[:20]))
    # The scan looked at something: process output of each service, rows, error bodies.
    names = {p.name for p in capture.files()}
    assert {"in-process.log", "http-error-bodies.jsonl", "execution-log-rows.jsonl"} <= names
    for service in ("api", "worker-content", "worker-logs", "fake-llm"):
        assert any(n.endswith(f"-{service}.log") for n in names), service
    assert len(capture.secrets) >= 10
