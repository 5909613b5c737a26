"""a learner's status per concept, and quiz attempts that keep their scoring

* ``concept_progress.status`` (``not_started``, ``in_progress``, ``done``) replaces the
  ``completed`` flag (one home for the status); rows marked completed become ``done``, the
  others ``not_started``. ``completed_at`` stays: when the concept was marked done.
* ``quiz_attempts`` keeps what the learner was told: ``correct`` and ``total`` (questions
  right, questions asked) and ``results`` (per question: the options chosen, whether that
  was right, the correct options and the explanation), so listing attempts never has to
  score again against a quiz that was regenerated since. Older rows get their counts from
  their score and quiz version, and no per-question results.
* Attempts are listed newest first per learner and concept: the index covers that order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = (
    "CREATE TYPE learner_status AS ENUM ('not_started', 'in_progress', 'done')",
    "ALTER TABLE concept_progress ADD COLUMN status learner_status NOT NULL DEFAULT 'not_started'",
    "UPDATE concept_progress SET status = 'done' WHERE completed",
    "ALTER TABLE concept_progress DROP COLUMN completed",
    "ALTER TABLE quiz_attempts ADD COLUMN correct integer NOT NULL DEFAULT 0,"
    " ADD COLUMN total integer NOT NULL DEFAULT 0,"
    " ADD COLUMN results jsonb NOT NULL DEFAULT '[]'::jsonb",
    """
    UPDATE quiz_attempts a
    SET total = jsonb_array_length(r.body -> 'questions'),
        correct = round(a.score * jsonb_array_length(r.body -> 'questions'))
    FROM content_items i
    JOIN content_results r ON r.item_id = i.id
    WHERE i.concept_id = a.concept_id AND i.kind = 'quiz' AND r.version = a.quiz_version
        AND jsonb_typeof(r.body -> 'questions') = 'array'
    """,
    "DROP INDEX ix_quiz_attempts_user_concept",
    "CREATE INDEX ix_quiz_attempts_user_concept_created"
    " ON quiz_attempts (user_id, concept_id, created_at DESC, id DESC)",
)

DOWNGRADE = (
    "DROP INDEX ix_quiz_attempts_user_concept_created",
    "CREATE INDEX ix_quiz_attempts_user_concept ON quiz_attempts (user_id, concept_id)",
    "ALTER TABLE quiz_attempts DROP COLUMN results, DROP COLUMN total, DROP COLUMN correct",
    "ALTER TABLE concept_progress ADD COLUMN completed boolean NOT NULL DEFAULT false",
    "UPDATE concept_progress SET completed = (status = 'done')",
    "ALTER TABLE concept_progress ALTER COLUMN completed DROP DEFAULT",
    "ALTER TABLE concept_progress DROP COLUMN status",
    "DROP TYPE learner_status",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
