"""Private servers a test may stop and restart (``own_postgres`` / ``own_redis``)."""

from __future__ import annotations

from roadmap_db.testing import migrate_to_head
from roadmap_devservers.embedded import EmbeddedPostgres


async def private_database(own_postgres: EmbeddedPostgres) -> str:
    """The migrated ``postgres`` database of a private server."""
    url = own_postgres.url
    await migrate_to_head(url)
    return url
