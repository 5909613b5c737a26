"""The three service images (services/*/Dockerfile) run the system as Railway would.

PostgreSQL, Redis, the fake LLM, the pre-deploy migration and the services share one container
network, with the commands, variables, health check and limits of
`infra/railway/railway_project.py`; a roadmap created through the API container completes with
its execution logs written. Each image holds only its own member and runs as a non-root user,
and each service stops on SIGTERM before Railway's draining time is up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from infra.containers.engine import Engine
from infra.containers.images import API_IMAGE, CONTENT_IMAGE, FAKE_LLM_IMAGE, LOGS_IMAGE, Built
from infra.containers.railway_stack import API, CONTENT, LOGS, RailwayStack, Roles
from infra.containers.tests import stack_checks
from infra.railway.tests.railway_testkit import Dockerfile

pytestmark = pytest.mark.containers

OWN_MEMBER = {API: "roadmap_api", CONTENT: "roadmap_worker_content", LOGS: "roadmap_worker_logs"}


@pytest.fixture(scope="module")
def stack(engine: Engine, images: dict[str, Built]) -> Iterator[RailwayStack]:
    roles = Roles(
        {
            API: images[API_IMAGE.name].tag,
            CONTENT: images[CONTENT_IMAGE.name].tag,
            LOGS: images[LOGS_IMAGE.name].tag,
        },
        single_image=False,
    )
    with RailwayStack(engine, roles, images[FAKE_LLM_IMAGE.name].tag) as running:
        running.start()
        yield running


def test_a_roadmap_completes_with_its_execution_logs(stack: RailwayStack) -> None:
    stack_checks.roadmap_completes_with_execution_logs(stack)


@pytest.mark.parametrize("service", [API, CONTENT, LOGS])
def test_the_image_holds_only_its_own_member(stack: RailwayStack, service: str) -> None:
    assert stack_checks.modules_found(stack, service) == {OWN_MEMBER[service]}


@pytest.mark.parametrize("service", [API, CONTENT, LOGS])
def test_runs_as_a_non_root_user(stack: RailwayStack, service: str) -> None:
    stack_checks.runs_as_non_root_with_the_server_as_pid1(stack, service)


def test_the_api_images_health_check_passes(stack: RailwayStack) -> None:
    # Read from the Dockerfile: podman's Docker API does not show an image's HEALTHCHECK.
    dockerfile = Dockerfile(API_IMAGE.dockerfile)
    (healthcheck,) = [
        i for i in dockerfile.stage(dockerfile.final_stage) if i.keyword == "HEALTHCHECK"
    ]
    command = json.loads(healthcheck.args[healthcheck.args.index("CMD") + 3 :].strip())
    code, out = stack.exec(API, command)
    assert code == 0, out


def test_published_ports_are_on_loopback_only(stack: RailwayStack) -> None:
    stack_checks.published_ports_on_loopback_only(stack)


# Last: they stop the stack.
@pytest.mark.parametrize("service", [API, LOGS, CONTENT])
def test_stops_on_sigterm_within_its_draining_time(stack: RailwayStack, service: str) -> None:
    stack_checks.stops_on_sigterm_within_draining_time(stack, service)
