"""The single image (infra/railway/Dockerfile) under each SERVICE_TYPE runs the system.

The same stack as with the service images, every role from one image picked by SERVICE_TYPE
(the pre-deploy migration is `SERVICE_TYPE=migrate`), plus Flower behind its password. The
image holds the three services and nothing that is never deployed.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.containers.engine import Engine
from infra.containers.images import FAKE_LLM_IMAGE, SINGLE_IMAGE, Built
from infra.containers.railway_stack import API, CONTENT, FLOWER, LOGS, RailwayStack, Roles
from infra.containers.tests import stack_checks

pytestmark = pytest.mark.containers

ROLES = (API, CONTENT, LOGS, FLOWER)


@pytest.fixture(scope="module")
def stack(engine: Engine, images: dict[str, Built]) -> Iterator[RailwayStack]:
    tag = images[SINGLE_IMAGE.name].tag
    roles = Roles(dict.fromkeys(ROLES, tag), single_image=True)
    with RailwayStack(engine, roles, images[FAKE_LLM_IMAGE.name].tag) as running:
        running.start()
        yield running


def test_a_roadmap_completes_with_its_execution_logs(stack: RailwayStack) -> None:
    stack_checks.roadmap_completes_with_execution_logs(stack)


def test_flower_asks_for_its_password(stack: RailwayStack) -> None:
    url = stack.flower_url()
    assert httpx.get(url, timeout=10).status_code == 401
    user, _, password = stack.secrets["FLOWER_BASIC_AUTH"].partition(":")
    assert httpx.get(url, auth=(user, password), timeout=10).status_code == 200


def test_the_image_holds_the_services_and_nothing_else(stack: RailwayStack) -> None:
    assert stack_checks.modules_found(stack, API) == set(stack_checks.MEMBERS)


@pytest.mark.parametrize("service", ROLES)
def test_runs_as_a_non_root_user(stack: RailwayStack, service: str) -> None:
    stack_checks.runs_as_non_root_with_the_server_as_pid1(stack, service)


def test_published_ports_are_on_loopback_only(stack: RailwayStack) -> None:
    stack_checks.published_ports_on_loopback_only(stack)


# Last: they stop the stack.
@pytest.mark.parametrize("service", [API, FLOWER, LOGS, CONTENT])
def test_stops_on_sigterm_within_its_draining_time(stack: RailwayStack, service: str) -> None:
    stack_checks.stops_on_sigterm_within_draining_time(stack, service)
