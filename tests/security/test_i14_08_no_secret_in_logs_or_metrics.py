"""Issue 14, item 8: no secret in logs or public endpoints.

Credentials a client puts in a URL (``?access_token=…``, ``?api_key=…``) or in headers
never reach a log line, whichever access log runs (the app's JSON line, or uvicorn's
raw-path line that ``roadmap up`` shows); ``/metrics`` answers only a scraper holding
``METRICS_TOKEN``. Before: uvicorn's access line carried the query values, and
``/metrics`` was served to anyone.
"""

from __future__ import annotations

import secrets

import pytest

from tests.support.capture import Capture
from tests.support.http import api_client
from tests.support.inproc import API, new_user
from tests.support.stack import Stack

pytestmark = pytest.mark.slow


async def test_i14_08_credentials_in_urls_and_headers_never_logged_metrics_need_the_token(
    stack: Stack, capture: Capture
) -> None:
    scrape_token = f"scrape-{secrets.token_hex(16)}"
    capture.secrets.add(scrape_token)
    stack.start(api=False, content_workers=0, logs_worker=False)
    json_log = stack.extra_api(ACCESS_LOG="true", METRICS_TOKEN=scrape_token)
    raw_log = stack.extra_api(uvicorn_access_log=True, ACCESS_LOG="false", LOG_JSON="false")

    for api in (json_log, raw_log):
        async with api_client(api.url, capture) as http:
            user = await new_user(http, capture.secrets)
            made = await http.post(
                f"{API}/me/api-keys", json={"name": "leak test"}, headers=user.headers
            )
            key = made.json()["key"]
            capture.secrets.add(key)
            cookie = f"session={secrets.token_hex(16)}"
            capture.secrets.add(cookie)
            query = f"access_token={user.token}&api_key={key}&token={user.password}"
            for path in (f"{API}/roadmaps", f"{API}/me", "/no-such-path"):
                await http.get(f"{path}?{query}", headers={**user.headers, "Cookie": cookie})
            await http.get(f"{API}/me?{query}", headers={"Authorization": f"Bearer {key}"})
            # A token in the wrong place of a malformed header is not echoed either.
            await http.get(f"{API}/me", headers={"Authorization": f"Token {user.token}"})

    # The requests were logged, with the credentials masked.
    assert "access_token=***" in raw_log.log(200_000), raw_log.log()
    assert '"route":"/api/v1/me"' in json_log.log(200_000), json_log.log()
    for api in (json_log, raw_log):
        text = api.log(2_000_000)
        leaked = [s for s in capture.secrets.snapshot() if s in text]
        assert not leaked, f"{len(leaked)} secrets in {api.log_path.name}"

    async with api_client(json_log.url, capture) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = {"Authorization": f"Bearer {scrape_token[:-1]}x"}
        assert (await http.get("/metrics", headers=wrong)).status_code == 401
        scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {scrape_token}"})
        assert scraped.status_code == 200
        assert "roadmap_api_request_duration_seconds" in scraped.text
    async with api_client(raw_log.url, capture) as http:
        # Without METRICS_TOKEN the endpoint is not served at all.
        answer = await http.get("/metrics", headers={"Authorization": f"Bearer {scrape_token}"})
        assert answer.status_code == 404
