"""claim tokens on jobs and content items, and a claim counter on items

A claim records the id of the task message that holds the work. A message
redelivered after its worker died (or handed back on soft shutdown) carries
the same id, so it takes its own work over at once instead of waiting for the
lease to expire.

Items count their attempts when an LLM call starts (so items claimed together
with one that kills the process are not charged for it) and their claims
separately: an item whose tasks keep dying before any call still ends failed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("roadmap_jobs", sa.Column("claim_token", sa.String(length=64), nullable=True))
    op.add_column("content_items", sa.Column("claim_token", sa.String(length=64), nullable=True))
    op.add_column(
        "content_items",
        sa.Column("claims", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # The reconciler scans only unfinished items; keep that scan off the full table.
    op.create_index(
        "ix_content_items_active",
        "content_items",
        ["status", "updated_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("ix_content_items_active", table_name="content_items")
    op.drop_column("content_items", "claims")
    op.drop_column("content_items", "claim_token")
    op.drop_column("roadmap_jobs", "claim_token")
