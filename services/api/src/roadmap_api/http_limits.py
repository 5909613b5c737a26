"""Bounds on slow and oversized clients, where uvicorn has none: uvicorn's protocol with limits.

uvicorn 0.54 (httptools or h11) bounds none of these: a connection that sends half a
header line, or nothing at all, stays open for good (its keep-alive timeout starts only
after a first response); a body trickling in a byte at a time is read for as long as it
takes; headers of any size are read and kept. One client can so hold connections, memory
and request slots for everybody. This subclass of uvicorn's httptools protocol adds:

- ``HTTP_HEADER_TIMEOUT_S``: a request's headers must be complete this long after the
  connection opened, or after the request's first byte (then 408 and close);
- ``HTTP_BODY_IDLE_TIMEOUT_S`` and ``HTTP_BODY_TIMEOUT_S``: once the headers are in, the
  body may pause at most this long between reads, and must be complete within the
  second bound (a body trickling a byte a second never goes idle); then 408 and close,
  and the application sees the client disconnect;
- ``HTTP_MAX_HEADER_BYTES``: the request line and headers together; larger → 431 and close.

The API's launcher (``roadmap-api``, ``roadmap_api.serve``) always serves with it; the
images, ``roadmap up``, the tests and the benchmarks all start the API through it. On the usual request, whose headers and body arrive in one read,
it costs a few attribute checks: timers are armed only while a request is incomplete.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from roadmap_api.settings import ApiSettings

log = logging.getLogger("roadmap_api.http_limits")

# The request line and the blank line after the headers count too.
_LINE_OVERHEAD = 4
# After a refusal the client may still be sending (an 8 MiB header, a body): what it
# sends is read and dropped this long, so that closing does not reset the connection
# before the client has read the answer.
LINGER_S = 2.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout_s: float
    body_idle_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int


@functools.cache
def limits() -> HttpLimits:
    """Read once per process, from the same settings as the app."""
    settings = ApiSettings()
    return HttpLimits(
        header_timeout_s=settings.http_header_timeout_s,
        body_idle_timeout_s=settings.http_body_idle_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        max_header_bytes=settings.http_max_header_bytes,
    )


class _HeadersTooLarge(Exception):
    """Raised from a parser callback; ``feed_data`` reports it as the error's context."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits()
        # Bytes received since the current request began while its headers were incomplete
        # (an upper bound of their size; checked exactly once they are complete).
        self._header_bytes = 0
        self._awaiting_headers = True
        self._in_body = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_idle_timer: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    # -- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Nothing sent yet: a connection that never sends a header is bounded too.
        self._header_timer = self.loop.call_later(
            self._limits.header_timeout_s, self._headers_too_slow
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: dropped
        if self._awaiting_headers:
            self._header_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self._refuse(431, "Request header fields too large")
            else:
                log.warning("invalid HTTP request received")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self.transport.is_closing():
            return
        if self._awaiting_headers:
            if self._header_bytes > self._limits.max_header_bytes + _LINE_OVERHEAD:
                self._refuse(431, "Request header fields too large")
            elif self._header_timer is None:
                self._header_timer = self.loop.call_later(
                    self._limits.header_timeout_s, self._headers_too_slow
                )
        elif self._in_body:
            self._body_arrived()

    # -- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._awaiting_headers = True
        self._in_body = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._cancel_header_timer()
        received, self._header_bytes = self._header_bytes, 0
        if received > self._limits.max_header_bytes and self._header_size() > (
            self._limits.max_header_bytes
        ):
            raise _HeadersTooLarge
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timers()
        super().on_message_complete()

    # -- timers -------------------------------------------------------------------------

    def _body_arrived(self) -> None:
        if self._body_deadline is None:
            self._body_deadline = self.loop.call_later(
                self._limits.body_timeout_s, self._body_too_slow
            )
        if self._body_idle_timer is not None:
            self._body_idle_timer.cancel()
        self._body_idle_timer = self.loop.call_later(
            self._limits.body_idle_timeout_s, self._body_too_slow
        )

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._refused:
            return
        if self._header_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # a connection that never sent a request: just close
            return
        self._refuse(408, "Request headers not received in time")

    def _body_too_slow(self) -> None:
        if self.transport.is_closing() or self._refused or not self._in_body:
            return
        if self.flow.read_paused:
            # We stopped reading (the application has not taken what came): not the client.
            self._cancel_body_timers()
            self._body_arrived()
            return
        self._cancel_body_timers()
        self._refuse(408, "Request body not received in time")

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timers(self) -> None:
        for timer in (self._body_idle_timer, self._body_deadline):
            if timer is not None:
                timer.cancel()
        self._body_idle_timer = self._body_deadline = None

    # -- answers ------------------------------------------------------------------------

    def _header_size(self) -> int:
        return len(self.url) + sum(len(n) + len(v) + _LINE_OVERHEAD for n, v in self.headers)

    def _refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` as a problem (unless a response already started) and close.

        The application, if it is still reading this request, then sees the client
        disconnect; whatever it still sends goes nowhere.
        """
        log.warning("request refused", extra={"status": status, "reason": detail})
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            body = orjson.dumps(
                {
                    "type": "about:blank",
                    "title": HTTPStatus(status).phrase,
                    "status": status,
                    "detail": detail,
                }
            )
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[status],
                        *(n + b": " + v + b"\r\n" for n, v in self.server_state.default_headers),
                        b"content-type: application/problem+json\r\n",
                        b"content-length: " + str(len(body)).encode() + b"\r\n",
                        b"connection: close\r\n\r\n",
                        body,
                    ]
                )
            )
        self._refused = True
        self._cancel_header_timer()
        self._cancel_body_timers()
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()
