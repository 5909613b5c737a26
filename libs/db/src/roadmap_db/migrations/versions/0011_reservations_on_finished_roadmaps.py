"""the token quota counts what is reserved on finished roadmaps too (mentor chat)

``roadmap_reserve_work`` (0006) summed the reservations of the owner's *unfinished*
roadmaps only. A mentor chat turn reserves its estimate on the roadmap it is about, which
is usually finished, and does not move its status: its reservation was invisible to the
next check, so concurrent chat turns of one owner could all pass below the daily token
quota and together spend past it. Now every reservation of the owner counts, whatever
the roadmap's status. A finished roadmap holds one only while a chat answer is being
written (the answer takes what is left of its estimate off when it ends; the trigger of
0006 zeroes the reservation of a job that stops working), so nothing else changes.

New roadmaps (``roadmap_submit_jobs``) keep counting unfinished roadmaps only: a chat in
flight can let one submit through with at most that chat's estimate unseen.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESERVE_WORK = """
CREATE OR REPLACE FUNCTION roadmap_reserve_work(
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
    SELECT
        count(*) FILTER (
            WHERE j.id <> p_job_id AND j.deleted_at IS NULL
                AND j.status IN ('queued', 'planning', 'awaiting_review', 'generating')
        ),
        coalesce(sum(j.tokens_reserved), 0)
        INTO active_work, tokens_reserved
        FROM roadmap_jobs j
        WHERE j.owner_id = p_owner_id;
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


def upgrade() -> None:
    op.execute(RESERVE_WORK)


def downgrade() -> None:
    # 0006's definition, loaded from its file (migrations are files, not a package).
    path = Path(__file__).with_name("0006_token_reservations.py")
    spec = importlib.util.spec_from_file_location(f"roadmap_migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(str(module.RESERVE_WORK).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
