"""the mentor chat: one conversation per learner and roadmap

* ``chat_messages`` holds both sides of the conversation. A learner's message is stored
  ``done`` with the placeholder of its answer (``pending``, ``reply_to`` pointing at the
  question) in the same transaction; the chat worker claims the placeholder
  (``streaming``, with the task id as ``claim_token`` and ``attempts`` counted, so a
  redelivered message resumes and a poison one ends ``failed``), and stores the whole
  answer with its usage when the stream ends (``done``) or why it did not (``failed``).
* The conversation is read in order per roadmap and learner, newest first for the
  context of an answer: the index covers both directions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = (
    "CREATE TYPE chat_role AS ENUM ('user', 'assistant')",
    "CREATE TYPE chat_status AS ENUM ('pending', 'streaming', 'done', 'failed')",
    """
    CREATE TABLE chat_messages (
        id uuid NOT NULL,
        job_id uuid NOT NULL,
        user_id uuid NOT NULL,
        role chat_role NOT NULL,
        status chat_status NOT NULL,
        content text NOT NULL DEFAULT '',
        concept_id uuid,
        reply_to uuid,
        error text,
        attempts integer NOT NULL DEFAULT 0,
        claim_token varchar(64),
        prompt_tokens integer NOT NULL DEFAULT 0,
        completion_tokens integer NOT NULL DEFAULT 0,
        cost_usd numeric(14, 6) NOT NULL DEFAULT 0,
        tokens_reserved bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz,
        CONSTRAINT pk_chat_messages PRIMARY KEY (id),
        CONSTRAINT fk_chat_messages_job_id_roadmap_jobs FOREIGN KEY (job_id)
            REFERENCES roadmap_jobs (id) ON DELETE CASCADE,
        CONSTRAINT fk_chat_messages_user_id_users FOREIGN KEY (user_id)
            REFERENCES users (id) ON DELETE CASCADE,
        CONSTRAINT fk_chat_messages_concept_id_concepts FOREIGN KEY (concept_id)
            REFERENCES concepts (id) ON DELETE SET NULL,
        CONSTRAINT fk_chat_messages_reply_to_chat_messages FOREIGN KEY (reply_to)
            REFERENCES chat_messages (id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX ix_chat_messages_job_user_created"
    " ON chat_messages (job_id, user_id, created_at, id)",
)

DOWNGRADE = (
    "DROP TABLE chat_messages",
    "DROP TYPE chat_status",
    "DROP TYPE chat_role",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
