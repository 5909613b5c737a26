"""Checking a pooled connection before it is handed out, in one round trip.

SQLAlchemy's ``pool_pre_ping`` on asyncpg costs three round trips per checkout (``BEGIN``,
``;``, ``ROLLBACK``): its ``;`` goes through asyncpg's extended protocol, a prepared
statement, which PgBouncer in transaction mode only keeps together inside a transaction.
A worker checks connections out several times per generated item, so those round trips
(and the event loop's time spent on them) sat between an LLM answer and the next call.

Here the check is a ``SELECT 1`` in asyncpg's simple query protocol: one round trip, no prepared statement,
safe behind PgBouncer in transaction mode. A connection asyncpg already knows is closed
(the server ended it; the event loop saw the socket close) fails the check without any.
A failed check raises SQLAlchemy's ``InvalidatePoolError``, exactly as its own pre-ping
does: the pool drops every connection older than now and opens a new one, so a worker's
engine still rides out a restart in its connect (``roadmap_db.engine``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_

# asyncpg.Connection.execute without arguments: the simple query protocol. (Not an empty
# ";": asyncpg's execute fails on the command tag an empty query does not have.)
PING = "SELECT 1"


def check_on_checkout(engine: AsyncEngine) -> None:
    """Check every connection of ``engine``'s pool as it is checked out (not when new)."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _check(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        if record.info.pop("fresh", False):
            return  # opened for this checkout: nothing to check
        raw = dbapi_connection.driver_connection
        if raw.is_closed():
            raise exc.InvalidatePoolError("the server closed the connection")
        try:
            await_(raw.execute(PING))
        except Exception as error:
            raise exc.InvalidatePoolError(f"connection check failed: {error!r}") from error

    @event.listens_for(engine.sync_engine.pool, "connect")
    def _opened(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["fresh"] = True
