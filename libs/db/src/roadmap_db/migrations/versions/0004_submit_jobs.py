"""submitting many jobs in one statement

``roadmap_submit_jobs`` takes the steps of ``roadmap_submit_job`` (migration 0003) for
each job of a batch, inside one transaction: the API gathers the submits that arrive while its previous
statement is in flight and sends them together, so Postgres parses, plans and commits once
per batch instead of once per request. Quotas stay exact: jobs of one owner are handled in
order, each count sees the jobs inserted before it in the same transaction, and the owners'
rows are locked in ascending id order, so two batches that share owners wait for each
other instead of deadlocking.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBMIT_JOBS = """
CREATE FUNCTION roadmap_submit_jobs(
    p_job_ids uuid[],
    p_owner_ids uuid[],
    p_requests jsonb[],
    p_day_floor uuid,
    p_max_active integer,
    p_max_per_day integer,
    p_max_tokens bigint
) RETURNS TABLE (
    job_id uuid,
    user_ok boolean,
    active_jobs bigint,
    jobs_today bigint,
    tokens_today bigint,
    oldest_today timestamptz,
    created_at timestamptz
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    b record;
BEGIN
    IF cardinality(p_job_ids) IS DISTINCT FROM cardinality(p_owner_ids)
            OR cardinality(p_job_ids) IS DISTINCT FROM cardinality(p_requests) THEN
        RAISE EXCEPTION 'roadmap_submit_jobs: arrays of different lengths';
    END IF;
    FOR b IN
        SELECT x.job, x.owner, x.request
        FROM unnest(p_job_ids, p_owner_ids, p_requests) WITH ORDINALITY AS x(job, owner, request, n)
        ORDER BY x.owner, x.n
    LOOP
        -- The steps of roadmap_submit_job (0003), inline: a function call per job would
        -- cost Postgres more than the steps themselves.
        job_id := b.job;
        user_ok := false;
        active_jobs := 0;
        jobs_today := 0;
        tokens_today := 0;
        oldest_today := NULL;
        created_at := NULL;
        PERFORM 1 FROM users u WHERE u.id = b.owner AND u.is_active FOR NO KEY UPDATE;
        IF FOUND THEN
            user_ok := true;
            SELECT count(*) INTO active_jobs FROM (
                SELECT 1 FROM roadmap_jobs j
                WHERE j.owner_id = b.owner AND j.deleted_at IS NULL
                    AND j.status IN ('queued', 'planning', 'awaiting_review', 'generating')
                LIMIT p_max_active
            ) active;
            SELECT count(*), coalesce(sum(d.tokens), 0), min(d.created_at)
                INTO jobs_today, tokens_today, oldest_today
                FROM (
                    SELECT j.prompt_tokens + j.completion_tokens AS tokens, j.created_at
                    FROM roadmap_jobs j WHERE j.owner_id = b.owner AND j.id >= p_day_floor
                    ORDER BY j.id LIMIT p_max_per_day
                ) d;
            IF active_jobs < p_max_active AND jobs_today < p_max_per_day
                    AND tokens_today < p_max_tokens THEN
                INSERT INTO roadmap_jobs AS j
                        (id, owner_id, request, status, current_step, enqueued_at)
                    VALUES (b.job, b.owner, b.request, 'queued', 'queued', now())
                    RETURNING j.created_at INTO created_at;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute(SUBMIT_JOBS)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION roadmap_submit_jobs(uuid[], uuid[], jsonb[], uuid, integer, integer, bigint)"
    )
