#!/usr/bin/env bash
# Boot a service's image as production does and wait until it is ready.
#
#   DATABASE_URL=… REDIS_URL=… bash .ci/image_smoke.sh IMAGE SERVICE
#
# Runs the image's `roadmap-db migrate`, then the image's own start command (its CMD) in
# production mode with throwaway secrets, on the host network next to the PostgreSQL and
# Redis the URLs name. Ready means: an HTTP service answers GET /readyz with 200, a worker
# answers a ping sent through its broker (asked from inside the container by
# `.ci/service_check.py probe`, piped in: the image does not contain it). The container
# is removed on the way out; its log is printed when it does not get ready.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:?usage: image_smoke.sh IMAGE SERVICE}
service=${2:?usage: image_smoke.sh IMAGE SERVICE}
: "${DATABASE_URL:?DATABASE_URL must name the PostgreSQL to boot against}"
: "${REDIS_URL:?REDIS_URL must name the Redis to boot against}"
timeout_s=${SMOKE_TIMEOUT_S:-120}
port=8000
entry=$(python3 .ci/service_check.py entry "$service")
name="smoke-${service}-$$"

cleanup() { docker rm --force "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Production settings refuse placeholder secrets: fresh random ones, never stored.
JWT_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
OPENAI_API_KEY="sk-smoke-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export JWT_SECRET_KEY OPENAI_API_KEY
run_env=(--env DATABASE_URL --env REDIS_URL --env JWT_SECRET_KEY --env OPENAI_API_KEY
    --env APP_ENV=production --env "PORT=$port" --env READYZ_REQUIRE_WORKERS=false)

echo "image-smoke: migrating with $image"
docker run --rm --network host "${run_env[@]}" "$image" roadmap-db migrate

echo "image-smoke: booting $image ($entry)"
docker run --detach --name "$name" --network host "${run_env[@]}" "$image" >/dev/null

deadline=$((SECONDS + timeout_s))
while ((SECONDS < deadline)); do
    if docker exec --interactive "$name" python - probe "$entry" --port "$port" \
        <.ci/service_check.py >/dev/null 2>&1; then
        echo "image-smoke: $service is ready ($((SECONDS)) s)"
        exit 0
    fi
    if [ "$(docker inspect --format '{{.State.Running}}' "$name")" != "true" ]; then
        echo "image-smoke: $service exited before it was ready" >&2
        break
    fi
    sleep 2
done
echo "image-smoke: $service was not ready within ${timeout_s}s; its log:" >&2
docker logs --tail 60 "$name" >&2 || true
exit 1
