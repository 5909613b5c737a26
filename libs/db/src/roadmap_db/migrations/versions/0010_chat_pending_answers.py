"""the reconciler finds lost chat answers through a partial index

Every reconciler pass asks for the assistant placeholders still ``pending`` past the
stale age, oldest first (``stale_pending_answers``). Only the few answers waiting for a
worker match, while the table keeps every message of every conversation: a partial index
on ``created_at`` over just those rows answers the query (range and order) without
scanning the conversations, and stays small because a placeholder leaves it once claimed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = (
    "CREATE INDEX ix_chat_messages_pending_answers ON chat_messages (created_at)"
    " WHERE role = 'assistant' AND status = 'pending'",
)

DOWNGRADE = ("DROP INDEX ix_chat_messages_pending_answers",)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
