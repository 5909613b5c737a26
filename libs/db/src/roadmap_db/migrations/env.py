"""Alembic environment: runs migrations on a connection handed in by ``roadmap_db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from roadmap_db.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `roadmap-db migrate`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; use `roadmap-db migrate`")
run_migrations_online()
