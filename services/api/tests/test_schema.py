"""Property-based tests of the whole API against its own OpenAPI schema (schemathesis).

Authenticated as a real user, every operation gets generated valid and invalid requests;
each response must have a documented status, content type and body, and never be a 5xx.
A longer run is marked ``slow``. (Cases are drawn with ``operation.as_strategy()``:
``schemathesis.pytest.from_fixture`` relies on a pytest attribute that pytest 9 removed.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from roadmap_api.main import create_app
from roadmap_api.testing import Account

from .conftest import settings_with

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="session")
def api_schema(migrated_url: str, redis_url: str) -> Iterator[Any]:
    # Schemathesis runs the app (and its lifespan) on its own event loop thread. Quotas are
    # out of the way so that generated submits reach the database.
    app = create_app(
        settings_with(
            migrated_url,
            redis_url,
            quota_max_active_jobs=10_000,
            quota_jobs_per_day=10_000,
            quota_tokens_per_day=10**12,
            register_ip_max=10_000,
            login_ip_max_attempts=10_000,
        )
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    asgi.shutdown_lifespans()


def run_all(schema: Any, headers: dict[str, str], examples: int) -> tuple[int, list[str]]:
    """Every operation, valid and invalid inputs; returns (requests made, one line per
    failing operation)."""
    failures = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                # No invalid input exists for an operation without parameters or body.
                if mode is not GenerationMode.NEGATIVE:
                    failures.append(f"{operation.label} ({mode.value}): no valid input")
            except Exception as exc:  # collect all operations' failures, then report
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return calls, failures


def test_api_conforms_to_its_schema(api_schema: Any, alice: Account) -> None:
    calls, failures = run_all(api_schema, alice.headers, examples=8)
    assert not failures, "\n\n".join(failures)
    assert calls >= 200


@pytest.mark.slow
def test_api_conforms_to_its_schema_long(api_schema: Any, alice: Account) -> None:
    # tests/security/test_p16_schemathesis.py runs thousands more against a real API process.
    calls, failures = run_all(api_schema, alice.headers, examples=50)
    assert not failures, "\n\n".join(failures)
    assert calls >= 1000
