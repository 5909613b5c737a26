"""Promise 16: Schemathesis over the whole OpenAPI schema, authenticated, a few thousand
cases → zero 5xx, zero schema violations.

It runs against a real API process (uvicorn) on the session's database and Redis, as a
logged-in user; every operation gets ``EXAMPLES`` generated cases (positive and negative).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from roadmap_dev.fake_llm import FakeLLM
from tests.support.capture import Capture
from tests.support.processes import ApiProcess
from tests.support.sentinels import SessionSecrets, new_password
from tests.support.stack import service_env

EXAMPLES = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def fuzzed_api(
    clean_state: str,
    redis_url: str,
    fake: FakeLLM,
    session_secrets: SessionSecrets,
    capture: Capture,
) -> Iterator[tuple[ApiProcess, dict[str, str]]]:
    env = service_env(
        database_url=clean_state,
        redis_url=redis_url,
        llm_base_url=fake.base_url,
        secrets=session_secrets,
        # No workers run here: /readyz would rightly answer 503, which is not what is fuzzed.
        overrides={"READYZ_REQUIRE_WORKERS": "false"},
    )
    api = ApiProcess(env, capture.log_dir)
    try:
        api.wait_ready()
        password = new_password()
        capture.secrets.add(password)
        with httpx.Client(base_url=api.url, timeout=10) as client:
            email = "fuzzer@example.com"
            assert (
                client.post(
                    "/api/v1/auth/register", json={"email": email, "password": password}
                ).status_code
                == 201
            )
            token = client.post(
                "/api/v1/auth/token", data={"username": email, "password": password}
            ).json()["access_token"]
        capture.secrets.add(token)
        yield api, {"Authorization": f"Bearer {token}"}
    finally:
        api.stop()


def _fuzz(operation: Any, mode: GenerationMode, auth: dict[str, str], capture: Capture) -> int:
    """Run EXAMPLES cases of one operation in one mode; returns how many were sent."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # report the first failure, do not shrink
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        response = case.call(headers=auth, timeout=10)
        sent += 1
        if response.status_code >= 400:
            request = httpx.Request(response.request.method or "GET", response.request.url or "/")
            capture.record_response(
                request, httpx.Response(response.status_code, content=response.content)
            )
        case.validate_response(response, checks=CHECKS)

    run()
    return sent


@pytest.mark.slow
def test_p16_schemathesis_whole_schema_authenticated_no_5xx_no_schema_violations(
    fuzzed_api: tuple[ApiProcess, dict[str, str]], capture: Capture
) -> None:
    api, auth = fuzzed_api
    document = httpx.get(f"{api.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=api.url)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20, [o.label for o in operations]
    failures: list[str] = []
    sent = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                sent += _fuzz(operation, mode, auth, capture)
            except Unsatisfiable:
                # No negative case exists for an operation without any input; anything else
                # that cannot be negated is a failure.
                raw = document["paths"][operation.path][operation.method.lower()]
                if mode is GenerationMode.POSITIVE or "parameters" in raw or "requestBody" in raw:
                    failures.append(f"{operation.label} [{mode}]: nothing could be generated")
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
                failures.append(f"{operation.label} [{mode}]: {exc}"[:3000])
    print(f"schemathesis: {sent} cases over {len(operations)} operations")
    assert not failures, "\n\n".join(failures)
    assert sent >= 2000, sent  # "a few thousand cases"
