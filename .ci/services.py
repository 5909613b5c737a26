"""Each deployable service on its runtime dependencies alone (a step of ``.ci/run``).

For every service of the workspace graph (or the ones named): ``uv sync --package <service>
--no-dev`` into a throwaway environment, then ``.ci/service_check.py`` with that
environment's Python against a fresh database and a Redis database of its own on this
machine's servers (``TEST_DATABASE_URL`` / ``TEST_REDIS_URL``, as the tests use them).
Run it with the workspace environment: ``uv run python .ci/services.py [SERVICE…]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from roadmap_dev.workspace import load
from roadmap_devservers import provide
from roadmap_devservers.pgdb import temporary_database
from roadmap_devservers.redisdb import claimed_redis_db, owned_redis_db
from roadmap_devservers.urls import with_path

REPO = Path(__file__).resolve().parent.parent
CHECK = REPO / ".ci" / "service_check.py"


def sync_alone(service: str, env_dir: Path) -> Path:
    """A fresh environment with ``service`` and its runtime dependencies only."""
    subprocess.run(  # noqa: S603 - fixed arguments and a service name from the workspace
        ["uv", "sync", "--quiet", "--package", service, "--no-dev"],  # noqa: S607 - uv on PATH
        cwd=REPO,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(env_dir)},
        check=True,
        timeout=600,
    )
    return env_dir / "bin" / "python"


def main(names: list[str]) -> int:
    services = [m.name for m in load(REPO).services()]
    unknown = sorted(set(names) - set(services))
    if unknown:
        print(
            f"services.py: not deployable services: {unknown} (known: {services})", file=sys.stderr
        )
        return 2
    failed = []
    with (
        tempfile.TemporaryDirectory(prefix="ci-services-") as scratch,
        provide.provide_postgres() as pg_server,
        provide.provide_redis() as redis_server,
    ):
        for service in names or services:
            print(f"--- {service}: uv sync --package {service} --no-dev", flush=True)
            python = sync_alone(service, Path(scratch) / service)
            claim = (
                claimed_redis_db(redis_server)
                if provide.redis_is_shared()
                else owned_redis_db(with_path(redis_server, "0"))
            )
            with temporary_database(pg_server, prefix="ci_service_") as database, claim as redis:
                check = subprocess.run(  # noqa: S603 - our own script with the service's Python
                    [str(python), str(CHECK), "check", service, "--database-url", database,
                     "--redis-url", redis],
                    cwd=REPO,
                    check=False,
                    timeout=600,
                )  # fmt: skip
            if check.returncode != 0:
                failed.append(service)
    if failed:
        print(f"services.py: not deployable on their own: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
