"""submitting many jobs in one statement

``roadmap_submit_jobs`` runs ``roadmap_submit_job`` (migration 0003) for each job of a
batch, inside one transaction: the API gathers the submits that arrive while its previous
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
        job_id := b.job;
        SELECT s.user_ok, s.active_jobs, s.jobs_today, s.tokens_today, s.oldest_today,
                s.created_at
            INTO user_ok, active_jobs, jobs_today, tokens_today, oldest_today, created_at
            FROM roadmap_submit_job(b.job, b.owner, b.request, p_day_floor, p_max_active,
                p_max_per_day, p_max_tokens) s;
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
