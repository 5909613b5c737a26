"""The services as Railway runs them, in containers on one network of their own.

Everything a service gets comes from the Railway definition (`infra/railway/railway_project.py`,
evaluated as the Railway CLI would): its start command (or, for the single `SERVICE_TYPE`
image, the image's entrypoint), its variables (references resolved to the containers here,
`preserve()` secrets generated per stack), its pre-deploy command, its health check path and
timeout, its memory limit and its draining time. PostgreSQL and Redis stand in for Railway's
plugins (with passwords, as there), and the fake LLM for OpenAI.

The host reaches the containers only through ports published on 127.0.0.1: the API (as
Railway's edge would) and Redis (to read the workers' heartbeats). Containers reach each
other by name on the stack's network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
import redis
from docker.errors import DockerException, NotFound

from infra.containers.engine import REPO, Engine
from roadmap_devservers.containers import owner_labels, postgres_image, redis_image

DEFINITION = REPO / "infra" / "railway" / "railway_project.py"
LOOPBACK = "127.0.0.1"
FAKE_LLM_PORT = 8765
FLOWER_PORT = 5555
READY_TIMEOUT_S = 120.0  # also Railway's default health check timeout
HEARTBEAT_PREFIX = "roadmap:heartbeat:"

API, CONTENT, LOGS, FLOWER = (
    "roadmap-api",
    "roadmap-worker-content",
    "roadmap-worker-logs",
    "roadmap-flower",
)
# The single image's roles (infra/railway/entrypoint.sh), by the service that plays them.
SERVICE_TYPES = {API: "api", CONTENT: "celery_content", LOGS: "celery_logs", FLOWER: "flower"}
WORKER_TYPES = {CONTENT: "worker-content", LOGS: "worker-logs"}


class StackError(RuntimeError):
    """A container did not start, exited, or was not healthy in time (with its last logs)."""


def load_definition() -> ModuleType:
    """`infra/railway/railway_project.py`, loaded by path as the Railway CLI does."""
    spec = importlib.util.spec_from_file_location("roadmap_railway_project_in_stack", DEFINITION)
    if spec is None or spec.loader is None:
        raise StackError(f"cannot load {DEFINITION}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def railway_graph(*, with_flower: bool) -> dict[str, dict[str, Any]]:
    """Resource name -> resource of the desired state the Railway CLI would plan."""
    definition = load_definition()
    project = definition.build_project(None, definition.Options(with_flower=with_flower))
    graph: dict[str, Any] = project.to_graph()
    return {r["name"]: r for r in graph["resources"]}


@dataclass(frozen=True)
class Roles:
    """Which image plays which service, and whether roles come from SERVICE_TYPE."""

    images: Mapping[str, str]  # service name -> image tag (API, CONTENT, LOGS, maybe FLOWER)
    single_image: bool  # the infra/railway image: SERVICE_TYPE picks the role, no start command


@dataclass
class Started:
    """A service's container and how long it took from `run` to healthy."""

    name: str
    container: Any  # docker Container
    seconds_to_healthy: float


@dataclass
class Stopped:
    name: str
    seconds: float
    exit_code: int
    draining_s: int
    killed: bool


@dataclass
class RailwayStack:
    """Start with `start()` (or use as a context manager); everything goes in `close()`."""

    engine: Engine
    roles: Roles
    fake_llm_image: str
    label: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        self.graph = railway_graph(with_flower=FLOWER in self.roles.images)
        self.network_name = f"roadmap-{self.label}"
        self.secrets = {
            "postgres": secrets.token_hex(16),
            "redis": secrets.token_hex(16),
            "JWT_SECRET_KEY": secrets.token_hex(32),
            "OPENAI_API_KEY": f"sk-test-{secrets.token_hex(12)}",
            "ADMIN_EMAIL": "admin@example.com",
            "ADMIN_PASSWORD": secrets.token_urlsafe(18),
            "FLOWER_BASIC_AUTH": f"flower:{secrets.token_urlsafe(12)}",
            "METRICS_TOKEN": secrets.token_urlsafe(24),
            "SEARCH_API_KEY": f"search-test-{secrets.token_hex(12)}",
        }
        self.containers: dict[str, Any] = {}
        self.started: dict[str, Started] = {}
        self._network: Any = None
        self._closer = contextlib.ExitStack()
        self._redis_port = 0

    def __enter__(self) -> RailwayStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- names and variables -------------------------------------------------------------------

    def host(self, name: str) -> str:
        """The private DNS name of a resource, as on Railway."""
        return f"{name.lower()}.railway.internal"

    @property
    def database_url(self) -> str:
        return (
            f"postgresql://postgres:{self.secrets['postgres']}@{self.host('Postgres')}:5432/railway"
        )

    @property
    def redis_url(self) -> str:
        return f"redis://default:{self.secrets['redis']}@{self.host('Redis')}:6379"

    def variables(self, service: str) -> dict[str, str]:
        """The service's variables with references and preserved secrets filled in."""
        resource = self.graph[service]
        resolved: dict[str, str] = {}
        for key, value in resource.get("variables", {}).items():
            kind = value["type"]
            if kind == "literal":
                resolved[key] = str(value["value"])
            elif kind == "reference":
                resolved[key] = self._reference(value["resource"], value["output"])
            elif kind == "preserve":
                resolved[key] = self._preserved(key)
            else:
                raise StackError(f"{service}: variable {key} of unknown kind {kind!r}")
        if self.roles.single_image:
            resolved["SERVICE_TYPE"] = SERVICE_TYPES[service]
        if "SEARCH_BASE_URL" in resolved:
            # Test-only: the fake search's pages sit on this stack's private network, which
            # the link checker refuses everywhere else.
            resolved["LINK_CHECK_ALLOW_HOSTS"] = self.host("fake-llm")
        return resolved

    def _reference(self, address: str, output: str) -> str:
        if address == "database.Postgres" and output == "DATABASE_URL":
            return self.database_url
        if address == "database.Redis" and output == "REDIS_URL":
            return self.redis_url
        if address.startswith("service."):
            return self.variables(address.removeprefix("service."))[output]
        raise StackError(f"reference to {address}.{output} has no stand-in here")

    def _preserved(self, key: str) -> str:
        if key == "OPENAI_BASE_URL":
            return f"http://{self.host('fake-llm')}:{FAKE_LLM_PORT}/v1"
        # The fake LLM's container also serves a fake web search (Brave's API) and its pages.
        if key == "SEARCH_BASE_URL":
            return f"http://{self.host('fake-llm')}:{FAKE_LLM_PORT}/search-fake"
        if key not in self.secrets:
            raise StackError(f"no test value for the preserved variable {key}")
        return self.secrets[key]

    def deploy(self, service: str) -> dict[str, Any]:
        deploy: dict[str, Any] = self.graph[service].get("deploy", {})
        return deploy

    def command(self, service: str) -> list[str] | None:
        """The start command as argv (Railway runs it in exec form), or the image's own."""
        start = self.deploy(service).get("startCommand")
        if start is None or self.roles.single_image:
            return None
        return shlex.split(start)

    def image(self, service: str) -> str:
        return self.roles.images[service]

    # -- containers -------------------------------------------------------------------------------

    def _run(
        self,
        name: str,
        image: str,
        *,
        command: list[str] | None = None,
        environment: Mapping[str, str] | None = None,
        ports: Mapping[str, tuple[str, None]] | None = None,
        mem_bytes: int | None = None,
        aliases: tuple[str, ...] = (),
        detach: bool = True,
    ) -> Any:
        client = self.engine.client
        container = client.containers.run(
            image,
            command=command,
            name=f"{self.network_name}-{name}",
            hostname=name,
            environment=dict(environment or {}),
            network=self.network_name,
            networking_config={
                self.network_name: client.api.create_endpoint_config(aliases=[name, *aliases])
            },
            ports=dict(ports or {}),
            labels=owner_labels(),
            # Railway runs no Docker HEALTHCHECK (it probes the path itself), and podman
            # would need systemd to schedule one.
            healthcheck={"test": ["NONE"]},
            mem_limit=mem_bytes,
            detach=detach,
        )
        self.containers[name] = container
        return container

    def _limits(self, service: str) -> int | None:
        limits = self.deploy(service).get("limitOverride", {}).get("containers", {})
        memory = limits.get("memoryBytes")
        return int(memory) if memory else None

    def start(self) -> RailwayStack:
        client = self.engine.client
        self._network = client.networks.create(
            self.network_name, driver="bridge", labels=owner_labels()
        )
        self._closer.callback(self._remove_all)
        self._start_backing_services()
        self.migrate()
        self.start_service(API)
        for service in (LOGS, CONTENT):
            self.start_service(service)
        if FLOWER in self.roles.images:
            self.start_service(FLOWER)
        return self

    def _start_backing_services(self) -> None:
        pg = self._run(
            "postgres",
            postgres_image(),
            environment={
                "POSTGRES_USER": "postgres",
                "POSTGRES_PASSWORD": self.secrets["postgres"],
                "POSTGRES_DB": "railway",
            },
            aliases=(self.host("Postgres"),),
        )
        self._run(
            "redis",
            redis_image(),
            command=["redis-server", "--requirepass", self.secrets["redis"]],
            ports={"6379/tcp": (LOOPBACK, None)},
            aliases=(self.host("Redis"),),
        )
        self._run(
            "fake-llm",
            self.fake_llm_image,
            command=[
                "python", "-m", "roadmap_dev.fake_llm", "--host", "0.0.0.0",
                "--port", str(FAKE_LLM_PORT), "--latency-ms", "20", "--concepts", "3",
            ],
            aliases=(self.host("fake-llm"),),
        )  # fmt: skip
        self._redis_port = self.published_port("redis", 6379)
        self._wait(
            "postgres",
            lambda: (
                pg.exec_run(["pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres"]).exit_code
                == 0
            ),
        )
        self._wait("redis", self._redis_answers)

    def published_port(self, name: str, port: int) -> int:
        container = self.containers[name]
        deadline = time.monotonic() + 10
        while True:
            container.reload()
            bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
            for binding in bindings:
                if binding.get("HostIp") == LOOPBACK and binding.get("HostPort"):
                    return int(binding["HostPort"])
            if time.monotonic() > deadline:
                raise StackError(f"{name}: no loopback port published for {port}: {bindings}")
            time.sleep(0.1)

    def redis_client(self) -> redis.Redis:
        return redis.Redis(
            host=LOOPBACK,
            port=self._redis_port,
            password=self.secrets["redis"],
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def _redis_answers(self) -> bool:
        client = self.redis_client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _wait(
        self, name: str, ready: Callable[[], bool], timeout: float = READY_TIMEOUT_S
    ) -> float:
        """Poll `ready` until true; fail with the container's last log lines if it exits."""
        container = self.containers[name]
        started = time.monotonic()
        while True:
            if ready():
                return time.monotonic() - started
            container.reload()
            if container.status in {"exited", "dead"}:
                raise StackError(
                    f"{name} exited ({self._exit_code(container)}):\n{self.logs(name)}"
                )
            if time.monotonic() - started > timeout:
                raise StackError(f"{name} not ready within {timeout:.0f} s:\n{self.logs(name)}")
            time.sleep(0.1)

    def logs(self, name: str, lines: int = 40) -> str:
        try:
            raw: bytes = self.containers[name].logs(tail=lines)
        except DockerException as exc:
            return f"(no logs: {exc})"
        return raw.decode(errors="replace")

    @staticmethod
    def _exit_code(container: Any) -> int:
        container.reload()
        return int(container.attrs["State"]["ExitCode"])

    def migrate(self) -> None:
        """The API's pre-deploy command, in a container of its image with its variables."""
        if self.roles.single_image:
            image = self.image(API)
            environment = {**self.variables(API), "SERVICE_TYPE": "migrate"}
            command = None
        else:
            image = self.image(API)
            environment = self.variables(API)
            (pre_deploy,) = self.deploy(API)["preDeployCommand"]
            command = shlex.split(pre_deploy)
        container = self._run(
            "migrate", image, command=command, environment=environment, mem_bytes=self._limits(API)
        )
        result = container.wait(timeout=READY_TIMEOUT_S)
        if result.get("StatusCode") != 0:
            raise StackError(f"pre-deploy migration failed ({result}):\n{self.logs('migrate')}")

    def start_service(self, service: str) -> Started:
        environment = self.variables(service)
        ports: dict[str, tuple[str, None]] = {}
        if service in (API, FLOWER):
            ports[f"{environment['PORT']}/tcp"] = (LOOPBACK, None)
        started = time.monotonic()
        self._run(
            service,
            self.image(service),
            command=self.command(service),
            environment=environment,
            ports=ports,
            mem_bytes=self._limits(service),
        )
        if service == API:
            self._wait(service, self._api_healthy)
        elif service == FLOWER:
            self._wait(service, self._flower_answers)
        else:
            self._wait(service, lambda: self._heartbeat(WORKER_TYPES[service], service))
        result = Started(service, self.containers[service], time.monotonic() - started)
        self.started[service] = result
        return result

    def replace(self, service: str) -> Started:
        """A new container for `service` in place of the running one (a redeploy, minus the
        overlap); the old one's heartbeats go first, so only the new one can be seen."""
        self.containers.pop(service).remove(force=True, v=True)
        if service in WORKER_TYPES:
            client = self.redis_client()
            try:
                for key in client.keys(f"{HEARTBEAT_PREFIX}{WORKER_TYPES[service]}:{service}:*"):
                    client.delete(key)
            finally:
                client.close()
        return self.start_service(service)

    @property
    def api_url(self) -> str:
        port = self.variables(API)["PORT"]
        return f"http://{LOOPBACK}:{self.published_port(API, int(port))}"

    def flower_url(self) -> str:
        port = self.variables(FLOWER)["PORT"]
        return f"http://{LOOPBACK}:{self.published_port(FLOWER, int(port))}"

    def _api_healthy(self) -> bool:
        path = self.deploy(API).get("healthcheckPath", "/healthz")
        try:
            return httpx.get(self.api_url + path, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _flower_answers(self) -> bool:
        try:
            return httpx.get(self.flower_url(), timeout=2).status_code == 401
        except httpx.HTTPError:
            return False

    def _heartbeat(self, worker_type: str, hostname: str) -> bool:
        client = self.redis_client()
        try:
            keys = client.keys(f"{HEARTBEAT_PREFIX}{worker_type}:{hostname}:*")
            return bool(keys)
        except redis.RedisError:
            return False
        finally:
            client.close()

    # -- inside a container ----------------------------------------------------------------

    def exec(self, name: str, command: list[str]) -> tuple[int, str]:
        result = self.containers[name].exec_run(command)
        return int(result.exit_code), bytes(result.output).decode(errors="replace")

    def stop(self, service: str) -> Stopped:
        """SIGTERM (the image's stop signal) with Railway's draining time before SIGKILL."""
        draining = int(self.deploy(service).get("drainingSeconds", 0)) or 10
        container = self.containers[service]
        started = time.monotonic()
        container.stop(timeout=draining)
        seconds = time.monotonic() - started
        container.reload()
        state = container.attrs["State"]
        code = int(state["ExitCode"])
        return Stopped(
            service, seconds, code, draining, killed=code == 137 or bool(state.get("OOMKilled"))
        )

    # -- teardown -----------------------------------------------------------------------------

    def _remove_all(self) -> None:
        for container in reversed(list(self.containers.values())):
            with contextlib.suppress(NotFound, DockerException):
                container.remove(force=True, v=True)
        self.containers.clear()
        if self._network is not None:
            with contextlib.suppress(NotFound, DockerException):
                self._network.remove()
            self._network = None

    def close(self) -> None:
        self._closer.close()


@contextlib.contextmanager
def running(engine: Engine, roles: Roles, fake_llm_image: str) -> Iterator[RailwayStack]:
    with RailwayStack(engine, roles, fake_llm_image) as stack:
        stack.start()
        yield stack
