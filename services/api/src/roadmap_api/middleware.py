"""Pure ASGI middleware: request id + access log + latency metric + (with tracing on) the
server span, and the body size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost low and lets the SSE
responses stream untouched.
"""

from __future__ import annotations

import logging
import re
import time

import uuid_utils
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roadmap_api import tracing
from roadmap_api.context import reset_request_id, set_request_id
from roadmap_api.deprecation import response_headers
from roadmap_api.errors import BodyTooLarge, problem_response
from roadmap_api.metrics import ApiMetrics
from roadmap_core import telemetry

access_log = logging.getLogger("roadmap_api.access")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestContextMiddleware:
    """Echo/assign ``X-Request-ID``, time the request, log it by route template (no query)."""

    def __init__(self, app: ASGIApp, *, access_log_enabled: bool) -> None:
        self.app = app
        # The app's metrics, built by its lifespan (after the process chose how to store them).
        self.metrics: ApiMetrics | None = None
        self.log_enabled = access_log_enabled
        # (method, route template, status) → its histogram child: a handful per app.
        self._timers: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = uuid_utils.uuid4().hex
        token = set_request_id(request_id)
        traced = tracing.start(scope) if telemetry.enabled else None
        start = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = scope.get("route")
                extra = getattr(route, "openapi_extra", None) if route is not None else None
                message["headers"] = [
                    *message.get("headers", ()),
                    header,
                    *(response_headers(extra) if extra else ()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            key = (scope["method"], route, status)
            timer = self._timers.get(key)
            if timer is None:
                timer = self._timer(scope, key)
            if timer is not None:
                timer.observe(elapsed)
            if self.log_enabled:
                state = scope.get("state") or {}
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "user_id": state.get("user_id"),
                    },
                )
            if traced is not None:  # after the access line, which carries its ids
                tracing.end(*traced, route, status)
            reset_request_id(token)

    def _timer(self, scope: Scope, key: tuple[str, str, int]) -> Histogram | None:
        if self.metrics is None:
            metrics = getattr(scope["app"].state, "metrics", None)
            if not isinstance(metrics, ApiMetrics):
                return None  # the lifespan has not run (an app served without one)
            self.metrics = metrics
        timer = self.metrics.request_duration.labels(key[0], key[1], str(key[2]))
        self._timers[key] = timer
        return timer


class BodyLimitMiddleware:
    """Reject bodies over ``max_bytes``: by Content-Length up front, and while they stream."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and declared > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        if not chunked:
            # The server reads exactly Content-Length bytes (none without it): nothing
            # more can arrive, so there is nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            detail=f"Request body larger than {self.max_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
