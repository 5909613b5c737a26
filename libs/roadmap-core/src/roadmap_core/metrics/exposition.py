"""Serving metrics to a scraper that holds ``METRICS_TOKEN``, and to no one else.

The API serves ``/metrics`` on its own port (``roadmap_api.health``). A worker has no
HTTP server, so its main process runs :class:`MetricsServer`: a small threaded HTTP
server on ``METRICS_HOST:METRICS_PORT`` answering ``GET /metrics`` with the samples of
every process of the worker (its children included) plus what is read at scrape time
(queue depths). Railway gives every service a private network address
(``<service>.railway.internal``); the port is not exposed publicly, and even on the
private network it answers only the bearer token, like the API.

Why its own port rather than pushing to a gateway or going through the API: a worker's
samples are in files on its own disk (multiprocess mode), only its own processes can read
them, and a pull from the scraper is what tells it the worker is up (``up == 0`` when it
is not), which a push cannot.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from pydantic import SecretStr
from redis import Redis

from roadmap_core.metrics import processes
from roadmap_core.metrics.processes import LOCAL
from roadmap_core.metrics.queues import QueueCollector
from roadmap_core.settings import WorkerMetricsSettings

log = logging.getLogger(__name__)


def bearer_matches(authorization: str | None, expected: SecretStr) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <expected>`` (constant time)."""
    scheme, _, supplied = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        supplied.strip().encode(), expected.get_secret_value().encode()
    )


class _Snapshot(CollectorRegistry):
    """A registry for one scrape: the recorded samples plus scrape-time collectors."""

    def __init__(self, recorded: CollectorRegistry, extra: Iterable[Collector]) -> None:
        super().__init__(auto_describe=False)
        self._recorded = recorded
        self._extra = list(extra)

    def collect(self) -> Iterator[Any]:
        yield from self._recorded.collect()
        for collector in self._extra:
            yield from collector.collect()


def render(fallback: CollectorRegistry, extra: Iterable[Collector] = ()) -> bytes:
    """The exposition text of a scrape (see :func:`processes.collecting_registry`)."""
    return generate_latest(_Snapshot(processes.collecting_registry(fallback), extra))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per scrape is noise


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


WsgiStart = Callable[[str, list[tuple[str, str]]], Any]


class MetricsServer:
    """``GET /metrics`` with the scrape token, in a daemon thread of this process."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        token: SecretStr,
        registry: CollectorRegistry,
        collectors: Iterable[Collector] = (),
    ) -> None:
        self._token = token
        self._registry = registry
        self._collectors = list(collectors)
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        self._server = make_server(
            host, port, self._app, server_class=server_class, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="roadmap-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        # ``shutdown()`` waits, without a timeout, for ``serve_forever`` to notice; a worker
        # stops this from inside its SIGTERM handler, where the serving thread can be stuck
        # behind a lock the interrupted main thread holds (a log handler's, say). Waiting
        # from a daemon thread bounds the stop: the serving thread is a daemon too and ends
        # with the process.
        stopper = threading.Thread(
            target=self._server.shutdown, name="roadmap-metrics-stop", daemon=True
        )
        stopper.start()
        stopper.join(timeout_s)
        if stopper.is_alive():
            log.warning("metrics server did not stop within %.0f s; leaving it to exit", timeout_s)
        self._server.server_close()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _app(self, environ: dict[str, Any], start: WsgiStart) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            return _answer(start, "404 Not Found", b"not found\n")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start, "405 Method Not Allowed", b"GET only\n", [("Allow", "GET")])
        if not bearer_matches(environ.get("HTTP_AUTHORIZATION"), self._token):
            return _answer(
                start, "401 Unauthorized", b"metrics need the scrape token\n",
                [("WWW-Authenticate", "Bearer")],
            )  # fmt: skip
        try:
            body = render(self._registry, self._collectors)
        except Exception:
            log.exception("rendering metrics failed")
            return _answer(start, "500 Internal Server Error", b"metrics unavailable\n")
        return _answer(start, "200 OK", body, content_type=CONTENT_TYPE_LATEST)


def _answer(
    start: WsgiStart,
    status: str,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
    *,
    content_type: str = "text/plain; charset=utf-8",
) -> list[bytes]:
    start(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])],
    )
    return [body]


class WorkerMetricsEndpoint:
    """A worker main process's metrics: its processes' samples plus its queue, from Redis.

    ``start()`` serves them when ``METRICS_TOKEN`` is set (else logs that they are not
    served); a port another process holds is logged, and the work goes on without metrics.
    """

    def __init__(self, settings: WorkerMetricsSettings, *, broker_url: str, queues: list[str],
                 socket_timeout_s: float) -> None:  # fmt: skip
        self._settings = settings
        self._broker_url = broker_url
        self._queues = queues
        self._timeout_s = socket_timeout_s
        self._redis: Redis | None = None
        self.server: MetricsServer | None = None

    def start(self) -> None:
        s = self._settings
        if self.server is not None:
            return
        if s.metrics_token is None:
            log.info("worker metrics are not served: METRICS_TOKEN is not set")
            return
        self._redis = Redis.from_url(
            self._broker_url, socket_timeout=self._timeout_s, socket_connect_timeout=self._timeout_s
        )
        try:
            self.server = MetricsServer(
                host=s.metrics_host,
                port=s.metrics_port,
                token=s.metrics_token,
                registry=LOCAL,
                collectors=[QueueCollector(self._redis, self._queues)],
            )
        except OSError as exc:
            log.warning(
                "worker metrics not served: cannot listen on %s:%s (%s)",
                s.metrics_host, s.metrics_port, exc,
            )  # fmt: skip
            self.stop()
            return
        self.server.start()
        log.info(
            "worker metrics on %s:%d/metrics (scrape token required)",
            s.metrics_host, self.server.port,
        )  # fmt: skip

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None
