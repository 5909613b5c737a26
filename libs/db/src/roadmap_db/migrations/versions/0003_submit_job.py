"""submitting a job under the owner's quotas, atomically in one call

``roadmap_submit_job`` locks the owner's row, counts their active jobs, jobs and tokens of
the last day (each count stops at its limit), and inserts the job only if every quota
allows it. It is one round trip for
the API's hottest endpoint, and correct under concurrency: each statement of a PL/pgSQL
function takes a fresh snapshot (READ COMMITTED), so the counts run after the lock and see
every job a concurrent submit of the same owner committed before releasing it. A single
``INSERT … SELECT … WHERE count < limit`` would not: its counts would use the snapshot taken
before it waited for the lock.

The partial index keeps the active-jobs count to the owner's unfinished jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBMIT_JOB = """
CREATE FUNCTION roadmap_submit_job(
    p_job_id uuid,
    p_owner_id uuid,
    p_request jsonb,
    p_day_floor uuid,
    p_max_active integer,
    p_max_per_day integer,
    p_max_tokens bigint
) RETURNS TABLE (
    user_ok boolean,
    active_jobs bigint,
    jobs_today bigint,
    tokens_today bigint,
    oldest_today timestamptz,
    created_at timestamptz
)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM users u WHERE u.id = p_owner_id AND u.is_active FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 0::bigint, 0::bigint, 0::bigint, NULL::timestamptz,
            NULL::timestamptz;
        RETURN;
    END IF;
    -- Counting stops at the limit: reaching it is all a check needs to know, and the scan
    -- stays as short as the quota however many jobs an owner has.
    SELECT count(*) INTO active_jobs FROM (
        SELECT 1 FROM roadmap_jobs j
        WHERE j.owner_id = p_owner_id AND j.deleted_at IS NULL
            AND j.status IN ('queued', 'planning', 'awaiting_review', 'generating')
        LIMIT p_max_active
    ) active;
    -- Ids are UUIDv7 (time-ordered): id >= p_day_floor means created in the last day, and
    -- the oldest come first, so below the limit these are all of the day's jobs.
    SELECT count(*), coalesce(sum(d.tokens), 0), min(d.created_at)
        INTO jobs_today, tokens_today, oldest_today
        FROM (
            SELECT j.prompt_tokens + j.completion_tokens AS tokens, j.created_at
            FROM roadmap_jobs j WHERE j.owner_id = p_owner_id AND j.id >= p_day_floor
            ORDER BY j.id LIMIT p_max_per_day
        ) d;
    user_ok := true;
    created_at := NULL;
    IF active_jobs < p_max_active AND jobs_today < p_max_per_day
            AND tokens_today < p_max_tokens THEN
        INSERT INTO roadmap_jobs AS j (id, owner_id, request, status, current_step, enqueued_at)
            VALUES (p_job_id, p_owner_id, p_request, 'queued', 'queued', now())
            RETURNING j.created_at INTO created_at;
    END IF;
    RETURN NEXT;
END
$$
"""


def upgrade() -> None:
    op.create_index(
        "ix_roadmap_jobs_owner_active",
        "roadmap_jobs",
        ["owner_id"],
        unique=False,
        postgresql_where=sa.text(
            "deleted_at IS NULL"
            " AND status IN ('queued', 'planning', 'awaiting_review', 'generating')"
        ),
    )
    op.execute(SUBMIT_JOB)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION roadmap_submit_job(uuid, uuid, jsonb, uuid, integer, integer, bigint)"
    )
    op.drop_index("ix_roadmap_jobs_owner_active", table_name="roadmap_jobs")
