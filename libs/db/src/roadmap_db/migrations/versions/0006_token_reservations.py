"""every route that makes the LLM work reserves tokens under the owner's quotas

Before, only submitting a roadmap checked the quotas, and tokens counted only on jobs
created in the last day: regenerating, revising or retrying spent without a check, and
spent on old jobs without counting at all.

Now:

* ``token_usage`` holds every owner's LLM tokens per hour (UTC), whatever job they went
  to. A trigger on ``roadmap_jobs`` adds each increase of a job's token totals (the worker
  records usage there) to the owner's current hour, so no code path can forget it.
* ``roadmap_jobs.tokens_reserved`` is what the job's work in flight still has reserved:
  a route that starts work adds its estimate, the same trigger takes every token the job
  then uses off it (never below 0), and sets it to 0 when the job comes to rest
  (``awaiting_review``) or ends (``completed``, ``partial_failure``, ``failed``,
  ``cancelled``) — whoever moves it: a worker, the reconciler after a worker died, a
  cancel. From then on only the real usage counts. The trigger changes the row being
  written (BEFORE), so reserving and settling cost no extra row.
* The quota counts ``used in the last 24 hours + reserved by the owner's unfinished
  jobs`` and admits work while that is below the daily limit; the active quota counts the
  owner's unfinished jobs other than the one the work is for.
* ``roadmap_reserve_work`` is the one check for every route that spends on an existing
  roadmap (review with or without feedback, retry, regenerate, and any later one): it
  locks the owner's row like ``roadmap_submit_jobs`` does, so concurrent requests of one
  owner are checked one after the other and cannot pass together. ``roadmap_submit_jobs``
  (new signature) does the same for new roadmaps, inline, and inserts each with its
  reservation. The one-job ``roadmap_submit_job`` of 0003, which nothing calls, goes.

Existing data: usage of the last day is taken from the jobs created in it; jobs working
at upgrade time hold no reservation (their usage still counts as it comes).

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

SCHEMA = (
    "ALTER TABLE roadmap_jobs ADD COLUMN tokens_reserved bigint NOT NULL DEFAULT 0",
    """
    CREATE TABLE token_usage (
        owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        hour timestamptz NOT NULL,
        tokens bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (owner_id, hour)
    )
    """,
    """
    INSERT INTO token_usage (owner_id, hour, tokens)
    SELECT owner_id, date_trunc('hour', created_at, 'UTC'),
        sum(prompt_tokens + completion_tokens)
    FROM roadmap_jobs
    WHERE created_at >= now() - interval '24 hours' AND prompt_tokens + completion_tokens > 0
    GROUP BY 1, 2
    """,
)

TRIGGERS = (
    """
    CREATE FUNCTION roadmap_job_spending() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        delta bigint := NEW.prompt_tokens + NEW.completion_tokens;
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            delta := delta - (OLD.prompt_tokens + OLD.completion_tokens);
            IF OLD.status IN ('queued', 'planning', 'generating') AND NEW.status NOT IN ('queued', 'planning', 'generating') THEN
                NEW.tokens_reserved := 0;
            END IF;
        END IF;
        IF delta > 0 THEN
            INSERT INTO token_usage AS t (owner_id, hour, tokens)
                VALUES (NEW.owner_id, date_trunc('hour', now(), 'UTC'), delta)
                ON CONFLICT (owner_id, hour) DO UPDATE SET tokens = t.tokens + EXCLUDED.tokens;
            NEW.tokens_reserved := greatest(NEW.tokens_reserved - delta, 0);
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER roadmap_jobs_spending_insert BEFORE INSERT ON roadmap_jobs FOR EACH ROW
        WHEN (NEW.prompt_tokens + NEW.completion_tokens > 0)
        EXECUTE FUNCTION roadmap_job_spending()
    """,
    """
    CREATE TRIGGER roadmap_jobs_spending_update
        BEFORE UPDATE OF prompt_tokens, completion_tokens, status ON roadmap_jobs
        FOR EACH ROW
        WHEN (NEW.prompt_tokens + NEW.completion_tokens
                > OLD.prompt_tokens + OLD.completion_tokens
            OR (OLD.status IN ('queued', 'planning', 'generating') AND NEW.status NOT IN ('queued', 'planning', 'generating')))
        EXECUTE FUNCTION roadmap_job_spending()
    """,
)

# What both functions below count for one owner (inline in each: a function call per job
# would cost the batched submit more than the counts themselves):
#   used     = sum(token_usage.tokens) of the hours that began in the last 24 hours
#   reserved = sum(roadmap_jobs.tokens_reserved) of the owner's unfinished jobs
# Work is admitted while used + reserved < the daily limit.

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
    -- Each statement takes a fresh snapshot after the lock: it sees every job a concurrent
    -- request of this owner committed before releasing the row.
    SELECT count(*) FILTER (WHERE j.id <> p_job_id), coalesce(sum(j.tokens_reserved), 0)
        INTO active_work, tokens_reserved
        FROM roadmap_jobs j
        WHERE j.owner_id = p_owner_id AND j.deleted_at IS NULL
            AND j.status IN ('queued', 'planning', 'awaiting_review', 'generating');
    SELECT coalesce(sum(u.tokens), 0), min(u.hour) INTO tokens_used, oldest_usage
        FROM token_usage u
        WHERE u.owner_id = p_owner_id
            AND u.hour >= date_trunc('hour', now() - interval '24 hours', 'UTC');
    IF active_work < p_max_active AND tokens_used + tokens_reserved < p_max_tokens THEN
        UPDATE roadmap_jobs j SET tokens_reserved = j.tokens_reserved + p_tokens
            WHERE j.id = p_job_id AND j.owner_id = p_owner_id;
        reserved := FOUND;
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
        -- jobs inserted before it in this transaction (see 0004).
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
            -- Past the limit the sum is cut short too, but the job is refused anyway.
            SELECT count(*), coalesce(sum(a.tokens_reserved), 0)
                INTO active_jobs, tokens_reserved
                FROM (
                    SELECT j.tokens_reserved FROM roadmap_jobs j
                    WHERE j.owner_id = b.owner AND j.deleted_at IS NULL
                        AND j.status IN ('queued', 'planning', 'awaiting_review', 'generating')
                    LIMIT p_max_active
                ) a;
            SELECT d.n, d.oldest, u.used, u.oldest_hour
                INTO jobs_today, oldest_today, tokens_used, oldest_usage
                FROM (
                    SELECT count(*) AS n, min(x.created_at) AS oldest FROM (
                        SELECT j.created_at
                        FROM roadmap_jobs j WHERE j.owner_id = b.owner AND j.id >= p_day_floor
                        ORDER BY j.id LIMIT p_max_per_day
                    ) x
                ) d, (
                    SELECT coalesce(sum(t.tokens), 0) AS used, min(t.hour) AS oldest_hour
                    FROM token_usage t
                    WHERE t.owner_id = b.owner
                        AND t.hour >= date_trunc('hour', now() - interval '24 hours', 'UTC')
                ) u;
            IF active_jobs < p_max_active AND jobs_today < p_max_per_day
                    AND tokens_used + tokens_reserved < p_max_tokens THEN
                INSERT INTO roadmap_jobs AS j
                        (id, owner_id, request, status, current_step, enqueued_at,
                         tokens_reserved)
                    VALUES (b.job, b.owner, b.request, 'queued', 'queued', now(), b.tokens)
                    RETURNING j.created_at INTO created_at;
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
    for statement in (*SCHEMA, *TRIGGERS, RESERVE_WORK):
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
    op.execute("DROP TRIGGER roadmap_jobs_spending_update ON roadmap_jobs")
    op.execute("DROP TRIGGER roadmap_jobs_spending_insert ON roadmap_jobs")
    op.execute("DROP FUNCTION roadmap_job_spending()")
    op.execute("DROP TABLE token_usage")
    op.execute("ALTER TABLE roadmap_jobs DROP COLUMN tokens_reserved")
