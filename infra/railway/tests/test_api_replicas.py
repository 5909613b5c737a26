"""API replicas of the all-roles image (`SERVICE_TYPE=api`) started together on a fresh database.

Each replica runs the real ``roadmap-db migrate`` before it starts the API (``roadmap-api``, stubbed here:
it records its argv and exits). All of them must get there, with one admin created.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from infra.railway.tests.railway_testkit import REPO, STUB_SOURCE, Stubs

ENTRYPOINT = REPO / "infra" / "railway" / "entrypoint.sh"
REPLICAS = 4


@pytest.fixture
def fresh_database(pg_server_url: str) -> Iterator[str]:
    import asyncio

    name = f"roadmap_replicas_{uuid.uuid4().hex[:10]}"
    base = pg_server_url.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def api_stub(tmp_path: Path) -> Stubs:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "roadmap-api"
    script.write_text(STUB_SOURCE.format(python=sys.executable))
    script.chmod(0o755)
    return Stubs(bin_dir, tmp_path / "calls.jsonl")


def test_replicas_started_together_all_migrate_and_start(
    fresh_database: str, api_stub: Stubs
) -> None:
    env = api_stub.env(
        SERVICE_TYPE="api",
        DATABASE_URL=fresh_database,
        ADMIN_EMAIL="ops@example.com",
        ADMIN_PASSWORD="a-long-admin-password",
    )
    # The real roadmap-db from this environment, after the stub that stands in for the API.
    env["PATH"] = f"{api_stub.bin}:{Path(sys.executable).parent}:{env['PATH']}"
    replicas = [
        subprocess.Popen(
            [str(ENTRYPOINT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(REPLICAS)
    ]
    outputs = [replica.communicate(timeout=240) for replica in replicas]
    for replica, (_, err) in zip(replicas, outputs, strict=True):
        assert replica.returncode == 0, err
    admin_lines = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    assert admin_lines == ["admin user: created"] + ["admin user: unchanged"] * (REPLICAS - 1)
    started = [c for c in api_stub.calls() if c["cmd"] == "roadmap-api"]
    assert len(started) == REPLICAS, "every replica went on to serve"
