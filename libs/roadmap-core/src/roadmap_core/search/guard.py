"""An HTTP transport that connects only to addresses the SSRF rules allow.

The check sits in the network backend, where the connection is opened: the host
is resolved once, every address it resolves to is checked, and the socket is
opened to the checked address itself. There is no second lookup a rebinding DNS
server could answer differently, and every redirect hop goes through the same
backend (a new origin means a new connection). TLS still verifies the
certificate against the URL's host name (httpcore passes the origin's host as
``server_hostname``, not the address we connected to).

Connections are kept alive for two seconds and reused for their own origin only
(scheme, host and port): a reused connection goes to the address that was checked when
it opened, so reuse opens no way around the rules, and the checks of one site (a
resource list often names several pages of it) skip the lookup, the connect and the
TLS handshake — after a response read to its end; one left unread (a redirect, a page
cut at the checker's limit) closes its connection. Two seconds, well below the usual
server-side keep-alive timeouts (5 s and up), so that a server rarely closes a
connection just as it is reused. A host that is an IP address is checked as it is,
without a lookup.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable

import httpcore2
import httpx2
from httpcore2._backends.auto import AutoBackend

from roadmap_core.search.addresses import IPAddress, parse_address, refusal


class BlockedAddress(httpcore2.ConnectError):
    """The host resolved to an address the checker may not connect to."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"refused to connect to {host}: {reason}")
        self.host = host
        self.reason = reason


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    def __init__(
        self, *, allow_loopback: bool = False, allow_hosts: frozenset[str] = frozenset()
    ) -> None:
        self._inner = AutoBackend()
        self.allow_loopback = allow_loopback
        self.allow_hosts = allow_hosts

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to; raises :class:`BlockedAddress` if any answer is refused."""
        literal = _ip_literal(host)
        if literal is not None:
            reason = refusal(literal, allow_loopback=self.allow_loopback)
            if reason is not None and host.lower() not in self.allow_hosts:
                raise BlockedAddress(host, reason)
            return str(literal)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore2.ConnectError(f"cannot resolve {host}")
        if host.lower() in self.allow_hosts:
            return addresses[0]
        # Every answer must be allowed: a name resolving to one public and one private
        # address is refused, whichever the resolver would have put first.
        for address in addresses:
            reason = refusal(parse_address(address), allow_loopback=self.allow_loopback)
            if reason is not None:
                raise BlockedAddress(host, reason)
        return addresses[0]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2 backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        address = await self.resolve(host, port)
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2 backend interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise BlockedAddress(path, "unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """``httpx2.AsyncHTTPTransport`` whose connections go through :class:`GuardedBackend`.

    No proxy (a proxy would resolve names itself) and no environment settings.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        allow_hosts: frozenset[str] = frozenset(),
        max_connections: int = 20,
        keepalive_s: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(trust_env=False)
        self.backend = GuardedBackend(allow_loopback=allow_loopback, allow_hosts=allow_hosts)
        # httpx2 builds its pool without a backend hook; the pool is replaced with one that
        # has it (the transport's request handling only uses the pool's public interface).
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            max_connections=max_connections,
            # Kept-alive connections are keyed by origin: reused for their own only.
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_s,
            network_backend=self.backend,
        )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return parse_address(host.strip("[]"))
    except ValueError:
        return None


def blocked_reason(exc: BaseException) -> str | None:
    """The SSRF refusal behind an httpx2 error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BlockedAddress):
            return seen.reason
        seen = seen.__cause__ or seen.__context__
    return None
