"""when a concept's resource links were last checked

Each stored resource carries its own check (``link``: status, HTTP status, final URL,
content type, page title, ``checked_at``) in the result body; this column says when the
item's links were last checked as a whole, so the reconciler's periodic re-check finds the
items that are due (oldest first, never-checked ones first of all) through a small
partial index instead of scanning result bodies. Existing resources items start NULL: the
first passes check (and replace) the links that were written before search grounding.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = (
    "ALTER TABLE content_items ADD COLUMN links_checked_at timestamptz",
    "CREATE INDEX ix_content_items_links_due ON content_items"
    " (links_checked_at NULLS FIRST, id)"
    " WHERE kind = 'resources' AND status = 'succeeded'",
)

DOWNGRADE = (
    "DROP INDEX ix_content_items_links_due",
    "ALTER TABLE content_items DROP COLUMN links_checked_at",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
