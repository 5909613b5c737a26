"""every route that makes the LLM work reserves tokens under the owner's quotas

Before, only submitting a roadmap checked the quotas, and tokens counted only on jobs
created in the last day: regenerating, revising or retrying spent without a check, and
spent on old jobs without counting at all.

Now:

* ``token_usage`` holds every owner's LLM tokens per hour, whatever job they went to.
  Triggers on ``roadmap_jobs`` add each increase of a job's token totals (the worker
  records usage there) to the owner's current hour, so no code path can forget it.
* ``work_reservations`` holds the work in flight: tokens reserved when a route started
  it (an estimate), and the tokens used since. A job has at most one; more work on a job
  that is already working adds to it. When the job comes to rest (``awaiting_review``, or
  an end: ``completed``, ``partial_failure``, ``failed``, ``cancelled``) a trigger deletes
  it: from then on only its real usage counts. Whoever moves the job (a worker, the
  reconciler after a worker died, a cancel) settles it that way.
* The quota counts ``used in the last 24 hours + what work in flight still has reserved``
  (``greatest(reserved - used, 0)`` each), and admits work while that is below the daily
  limit; the active-work quota counts the owner's unfinished jobs other than the one the
  work is for, plus reservations of work that is not a job's.
* ``roadmap_reserve_work`` is the one check for every route that spends (regenerate,
  retry, review with or without feedback, and any later one): it locks the owner's row
  like ``roadmap_submit_jobs`` does, so concurrent requests of one owner are checked one
  after the other and cannot pass together. ``roadmap_submit_jobs`` (new signature) does
  the same for new roadmaps, inline, and records each new job's reservation.

Existing data: usage of the last day is taken from the jobs created in it; jobs working
at upgrade time get no reservation (their usage still counts as it comes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    """
    CREATE TABLE token_usage (
        owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        hour timestamptz NOT NULL,
        tokens bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (owner_id, hour)
    )
    """,
    """
    CREATE TABLE work_reservations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        job_id uuid UNIQUE REFERENCES roadmap_jobs (id) ON DELETE CASCADE,
        reserved_tokens bigint NOT NULL CHECK (reserved_tokens >= 0),
        used_tokens bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX ix_work_reservations_owner ON work_reservations (owner_id)",
)

BACKFILL = """
INSERT INTO token_usage (owner_id, hour, tokens)
SELECT owner_id, date_trunc('hour', created_at, 'UTC'), sum(prompt_tokens + completion_tokens)
FROM roadmap_jobs
WHERE created_at >= now() - interval '24 hours' AND prompt_tokens + completion_tokens > 0
GROUP BY 1, 2
"""

TRIGGERS = (
    """
    CREATE FUNCTION roadmap_job_usage() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        delta bigint := NEW.prompt_tokens + NEW.completion_tokens;
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            delta := delta - (OLD.prompt_tokens + OLD.completion_tokens);
        END IF;
        IF delta > 0 THEN
            INSERT INTO token_usage AS t (owner_id, hour, tokens)
                VALUES (NEW.owner_id, date_trunc('hour', now(), 'UTC'), delta)
                ON CONFLICT (owner_id, hour) DO UPDATE SET tokens = t.tokens + EXCLUDED.tokens;
            UPDATE work_reservations SET used_tokens = used_tokens + delta
                WHERE job_id = NEW.id;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER roadmap_jobs_usage_insert AFTER INSERT ON roadmap_jobs FOR EACH ROW
        WHEN (NEW.prompt_tokens + NEW.completion_tokens > 0)
        EXECUTE FUNCTION roadmap_job_usage()
    """,
    """
    CREATE TRIGGER roadmap_jobs_usage_update
        AFTER UPDATE OF prompt_tokens, completion_tokens ON roadmap_jobs FOR EACH ROW
        WHEN (NEW.prompt_tokens + NEW.completion_tokens
            > OLD.prompt_tokens + OLD.completion_tokens)
        EXECUTE FUNCTION roadmap_job_usage()
    """,
    """
    CREATE FUNCTION roadmap_job_settle() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM work_reservations WHERE job_id = NEW.id;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER roadmap_jobs_settle AFTER UPDATE OF status ON roadmap_jobs FOR EACH ROW
        WHEN (OLD.status IN ('queued', 'planning', 'generating')
            AND NEW.status NOT IN ('queued', 'planning', 'generating'))
        EXECUTE FUNCTION roadmap_job_settle()
    """,
)

# The quota counts, as each function below computes them for one owner (inline there: a
# function call per job would cost the batched submit more than the counts themselves):
#   used        = sum(token_usage.tokens) of the hours that began in the last 24 hours
#   outstanding = sum(greatest(reserved_tokens - used_tokens, 0)) of open reservations
# Work is admitted while used + outstanding < the daily limit.

RESERVE_WORK = """
CREATE FUNCTION roadmap_reserve_work(
    p_owner_id uuid,
    p_job_id uuid,
    p_tokens bigint,
    p_max_active integer,
    p_max_tokens bigint
) RETURNS TABLE (
    user_ok boolean,
    reserved boolean,
    active_work bigint,
    tokens_used bigint,
    tokens_reserved bigint,
    oldest_usage timestamptz
)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    user_ok := false;
    reserved := false;
    active_work := 0;
    tokens_used := 0;
    tokens_reserved := 0;
    oldest_usage := NULL;
    PERFORM 1 FROM users u WHERE u.id = p_owner_id AND u.is_active FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;
    user_ok := true;
    -- Each statement takes a fresh snapshot after the lock: it sees every reservation a
    -- concurrent request of this owner committed before releasing the row.
    SELECT count(*) INTO active_work FROM (
        SELECT 1 FROM roadmap_jobs j
        WHERE j.owner_id = p_owner_id AND j.deleted_at IS NULL
            AND j.status IN ('queued', 'planning', 'awaiting_review', 'generating')
            AND j.id IS DISTINCT FROM p_job_id
        UNION ALL
        SELECT 1 FROM work_reservations w WHERE w.owner_id = p_owner_id AND w.job_id IS NULL
        LIMIT p_max_active
    ) active;
    SELECT coalesce(sum(u.tokens), 0), min(u.hour) INTO tokens_used, oldest_usage
        FROM token_usage u
        WHERE u.owner_id = p_owner_id
            AND u.hour >= date_trunc('hour', now() - interval '24 hours', 'UTC');
    SELECT coalesce(sum(greatest(w.reserved_tokens - w.used_tokens, 0)), 0)
        INTO tokens_reserved
        FROM work_reservations w WHERE w.owner_id = p_owner_id;
    IF active_work < p_max_active AND tokens_used + tokens_reserved < p_max_tokens THEN
        IF p_job_id IS NULL THEN
            INSERT INTO work_reservations (owner_id, reserved_tokens)
                VALUES (p_owner_id, p_tokens);
        ELSE
            INSERT INTO work_reservations AS w (owner_id, job_id, reserved_tokens)
                VALUES (p_owner_id, p_job_id, p_tokens)
                ON CONFLICT (job_id)
                DO UPDATE SET reserved_tokens = w.reserved_tokens + EXCLUDED.reserved_tokens;
        END IF;
        reserved := true;
    END IF;
    RETURN NEXT;
END
$$
"""

SUBMIT_JOBS = """
CREATE FUNCTION roadmap_submit_jobs(
    p_job_ids uuid[],
    p_owner_ids uuid[],
    p_requests jsonb[],
    p_reserve_tokens bigint[],
    p_day_floor uuid,
    p_max_active integer,
    p_max_per_day integer,
    p_max_tokens bigint
) RETURNS TABLE (
    job_id uuid,
    user_ok boolean,
    active_jobs bigint,
    jobs_today bigint,
    tokens_used bigint,
    tokens_reserved bigint,
    oldest_today timestamptz,
    oldest_usage timestamptz,
    created_at timestamptz
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    b record;
BEGIN
    IF cardinality(p_job_ids) IS DISTINCT FROM cardinality(p_owner_ids)
            OR cardinality(p_job_ids) IS DISTINCT FROM cardinality(p_requests)
            OR cardinality(p_job_ids) IS DISTINCT FROM cardinality(p_reserve_tokens) THEN
        RAISE EXCEPTION 'roadmap_submit_jobs: arrays of different lengths';
    END IF;
    FOR b IN
        SELECT x.job, x.owner, x.request, x.tokens
        FROM unnest(p_job_ids, p_owner_ids, p_requests, p_reserve_tokens)
            WITH ORDINALITY AS x(job, owner, request, tokens, n)
        ORDER BY x.owner, x.n
    LOOP
        -- Owners are locked in id order (no deadlock between batches); each count sees the
        -- jobs and reservations inserted before it in this transaction (see 0004).
        job_id := b.job;
        user_ok := false;
        active_jobs := 0;
        jobs_today := 0;
        tokens_used := 0;
        tokens_reserved := 0;
        oldest_today := NULL;
        oldest_usage := NULL;
        created_at := NULL;
        PERFORM 1 FROM users u WHERE u.id = b.owner AND u.is_active FOR NO KEY UPDATE;
        IF FOUND THEN
            user_ok := true;
            SELECT count(*) INTO active_jobs FROM (
                SELECT 1 FROM roadmap_jobs j
                WHERE j.owner_id = b.owner AND j.deleted_at IS NULL
                    AND j.status IN ('queued', 'planning', 'awaiting_review', 'generating')
                UNION ALL
                SELECT 1 FROM work_reservations w WHERE w.owner_id = b.owner AND w.job_id IS NULL
                LIMIT p_max_active
            ) active;
            SELECT count(*), min(d.created_at) INTO jobs_today, oldest_today
                FROM (
                    SELECT j.created_at
                    FROM roadmap_jobs j WHERE j.owner_id = b.owner AND j.id >= p_day_floor
                    ORDER BY j.id LIMIT p_max_per_day
                ) d;
            SELECT coalesce(sum(u.tokens), 0), min(u.hour) INTO tokens_used, oldest_usage
                FROM token_usage u
                WHERE u.owner_id = b.owner
                    AND u.hour >= date_trunc('hour', now() - interval '24 hours', 'UTC');
            SELECT coalesce(sum(greatest(w.reserved_tokens - w.used_tokens, 0)), 0)
                INTO tokens_reserved
                FROM work_reservations w WHERE w.owner_id = b.owner;
            IF active_jobs < p_max_active AND jobs_today < p_max_per_day
                    AND tokens_used + tokens_reserved < p_max_tokens THEN
                INSERT INTO roadmap_jobs AS j
                        (id, owner_id, request, status, current_step, enqueued_at)
                    VALUES (b.job, b.owner, b.request, 'queued', 'queued', now())
                    RETURNING j.created_at INTO created_at;
                INSERT INTO work_reservations (owner_id, job_id, reserved_tokens)
                    VALUES (b.owner, b.job, b.tokens);
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$
"""

OLD_SUBMIT_JOBS_SIGNATURE = "uuid[], uuid[], jsonb[], uuid, integer, integer, bigint"
NEW_SUBMIT_JOBS_SIGNATURE = "uuid[], uuid[], jsonb[], bigint[], uuid, integer, integer, bigint"


SUBMIT_JOB_SIGNATURE = "uuid, uuid, jsonb, uuid, integer, integer, bigint"


def upgrade() -> None:
    for statement in (*TABLES, BACKFILL, *TRIGGERS, RESERVE_WORK):
        op.execute(statement)
    op.execute(f"DROP FUNCTION roadmap_submit_jobs({OLD_SUBMIT_JOBS_SIGNATURE})")
    op.execute(SUBMIT_JOBS)
    # The one-job form of 0003 knows nothing of reservations, and nothing calls it.
    op.execute(f"DROP FUNCTION roadmap_submit_job({SUBMIT_JOB_SIGNATURE})")


def _earlier(filename: str, name: str) -> str:
    # Migrations are files, not a package: load the one that holds an earlier function.
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"roadmap_migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(getattr(module, name))


def downgrade() -> None:
    op.execute(_earlier("0003_submit_job.py", "SUBMIT_JOB"))
    op.execute(f"DROP FUNCTION roadmap_submit_jobs({NEW_SUBMIT_JOBS_SIGNATURE})")
    op.execute(_earlier("0004_submit_jobs.py", "SUBMIT_JOBS"))
    op.execute("DROP FUNCTION roadmap_reserve_work(uuid, uuid, bigint, integer, bigint)")
    op.execute("DROP TRIGGER roadmap_jobs_settle ON roadmap_jobs")
    op.execute("DROP TRIGGER roadmap_jobs_usage_update ON roadmap_jobs")
    op.execute("DROP TRIGGER roadmap_jobs_usage_insert ON roadmap_jobs")
    op.execute("DROP FUNCTION roadmap_job_settle()")
    op.execute("DROP FUNCTION roadmap_job_usage()")
    op.execute("DROP TABLE work_reservations")
    op.execute("DROP TABLE token_usage")
