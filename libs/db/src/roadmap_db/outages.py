"""Which PostgreSQL errors mean "the server is away for now" (see ``roadmap_core.outages``)."""

from __future__ import annotations

import asyncpg

# Refused or timed out (OSError, TimeoutError), "the database system is starting up /
# shutting down" (CannotConnectNowError), connection-class SQLSTATE 08, and a server full
# of connections: each passes once the server is back or has room again.
_CONNECT_OUTAGES = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


def is_connect_outage(exc: BaseException) -> bool:
    """Opening a connection failed because the server is unreachable or not ready."""
    return isinstance(exc, _CONNECT_OUTAGES)
