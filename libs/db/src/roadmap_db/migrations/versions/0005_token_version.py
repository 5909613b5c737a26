"""a token version per user, so that a password change revokes every earlier token

Access tokens carry the version of their user at issue time (claim ``ver``; tokens
without it are version 0). Changing the password increments it: every token issued
before the change no longer matches and is refused, on every route including the
batched submit (``job_actions.create_jobs``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("users", "token_version")
