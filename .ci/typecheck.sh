#!/usr/bin/env bash
# mypy --strict (config in pyproject.toml), one run per member: every member has its
# own tests/conftest.py, and module names only need to be unique within a member.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for paths in \
    "libs/roadmap-core/src libs/roadmap-core/tests" \
    "libs/db/src libs/db/tests" \
    "libs/devservers/src libs/devservers/tests" \
    "services/api/src services/api/tests" \
    "services/worker-content/src services/worker-content/tests" \
    "services/worker-logs/src services/worker-logs/tests" \
    "tools/roadmap-dev/src tools/roadmap-dev/tests" \
    "clients/python/src clients/python/tests" \
    "services/web/src services/web/tests" \
    "tests" \
    "bench" \
    "infra/railway .railway" \
    "infra/observability" \
    "infra/containers" \
    ".ci"; do
    echo "mypy $paths"
    # shellcheck disable=SC2086
    uv run mypy $paths || status=1
done
exit $status
