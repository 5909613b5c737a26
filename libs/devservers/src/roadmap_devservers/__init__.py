"""Real PostgreSQL and Redis for tests and the dev stack (never SQLite or fakes)."""

from roadmap_devservers.embedded import EmbeddedPostgres, EmbeddedRedis
from roadmap_devservers.errors import (
    BinaryNotFoundError,
    DataDirNotAccessibleError,
    DevServerError,
    PortInUseError,
    ServerStartError,
    StaleDataDirError,
)
from roadmap_devservers.provide import provide_postgres, provide_redis

__all__ = [
    "BinaryNotFoundError",
    "DataDirNotAccessibleError",
    "DevServerError",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "PortInUseError",
    "ServerStartError",
    "StaleDataDirError",
    "provide_postgres",
    "provide_redis",
]
