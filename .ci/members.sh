#!/usr/bin/env bash
# Each workspace member, installed on its own (`uv sync --package <member>`), must
# import and pass (or, below, collect) its own tests: this catches a member that leans on another
# member's dependencies. Each gets a throwaway virtualenv; the shared .venv is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A MEMBERS=(
    [roadmap-core]="libs/roadmap-core:roadmap_core"
    [roadmap-db]="libs/db:roadmap_db"
    [roadmap-devservers]="libs/devservers:roadmap_devservers"
    [roadmap-api]="services/api:roadmap_api.main"
    [roadmap-worker-content]="services/worker-content:roadmap_worker_content.app"
    [roadmap-worker-logs]="services/worker-logs:roadmap_worker_logs.app"
    [roadmap-dev]="tools/roadmap-dev:roadmap_dev.cli"
    [roadmap-client]="clients/python:roadmap_client"
    [roadmap-web]="services/web:roadmap_web.app"
)
# Their whole suites ran in .ci/run's earlier steps (the services' in the integration step,
# the CLI's in the fast and slow parts): here the tests of these members are collected in
# the member's own environment (every test module, conftest and plugin imported — what finds
# a dependency the member does not declare), not run again. That keeps .ci/run within its 35
# minutes on a 2-core machine (the CLI's tests alone took ~55 s here).
COLLECTED_ONLY=" roadmap-api roadmap-worker-content roadmap-worker-logs roadmap-dev "
only=("$@")
root=$(mktemp -d)
chmod 755 "$root"  # the embedded Postgres runs as an unprivileged user and must traverse it
trap 'rm -rf "$root"' EXIT

for member in roadmap-core roadmap-db roadmap-devservers roadmap-api roadmap-worker-content roadmap-worker-logs roadmap-dev roadmap-client roadmap-web; do
    if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " ${member} " ]]; then continue; fi
    IFS=: read -r path module <<<"${MEMBERS[$member]}"
    echo "--- $member ($path)"
    export UV_PROJECT_ENVIRONMENT="$root/$member"
    uv sync --quiet --package "$member"
    uv run --no-sync python -c "import ${module}"
    if [[ "$COLLECTED_ONLY" == *" $member "* ]]; then
        uv run --no-sync pytest -q -p no:cacheprovider --collect-only "$path/tests" | tail -n 1
    else
        uv run --no-sync pytest -q -p no:cacheprovider -m "not slow" "$path/tests"
    fi
    unset UV_PROJECT_ENVIRONMENT
done
