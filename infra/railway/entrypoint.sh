#!/bin/sh
# Starts the role named by SERVICE_TYPE inside the all-roles image
# (infra/railway/Dockerfile): the single-image layout teams used before the
# per-service images, kept so a deployment can move one service at a time.
#
#   api             uvicorn serving roadmap_api (runs `roadmap-db migrate` first
#                   unless RUN_MIGRATIONS=false, as the old entrypoint did)
#   celery_logs     Celery worker on the "logs" queue
#   celery_content  Celery worker on the "content_generation" queue, prefork pool
#   celery_chat     the content worker's chat role: only the "chat" queue (mentor chat
#                   answers), CHAT_WORKER_CONCURRENCY prefork children
#   web             uvicorn serving the web UI (roadmap_web), which calls the API at API_URL
#   flower          Celery Flower, only with FLOWER_BASIC_AUTH=user:password set
#   migrate         `roadmap-db migrate` and exit (for a pre-deploy command)
#
# The commands and their defaults match the per-service images' CMD lines; the
# old layout's UVICORN_WORKERS, CELERY_LOGS_CONCURRENCY and CELERY_CONTENT_CONCURRENCY
# still work here when the new names are not set.
set -eu

roles="api celery_logs celery_content celery_chat web flower migrate"

fail() {
    echo "entrypoint: $*" >&2
    exit 64
}

case "${SERVICE_TYPE:-}" in
    api)
        case "${RUN_MIGRATIONS:-true}" in
            true | 1 | yes) roadmap-db migrate ;;
            false | 0 | no) ;;
            *) fail "RUN_MIGRATIONS must be true or false, got '${RUN_MIGRATIONS}'" ;;
        esac
        exec roadmap-api --host 0.0.0.0 --port "${PORT:-8000}" \
            --workers "${WEB_CONCURRENCY:-${UVICORN_WORKERS:-2}}" --proxy-headers \
            --timeout-graceful-shutdown "${UVICORN_GRACEFUL_SHUTDOWN_S:-20}"
        ;;
    celery_logs)
        # SIGTERM starts Celery's soft shutdown instead of an unbounded warm one.
        export REMAP_SIGTERM=SIGQUIT
        exec celery -A roadmap_worker_logs.app:celery_app worker -Q logs \
            --concurrency "${LOGS_WORKER_CONCURRENCY:-${CELERY_LOGS_CONCURRENCY:-2}}" \
            --max-tasks-per-child "${LOGS_WORKER_MAX_TASKS_PER_CHILD:-1000}" \
            --hostname "logs@%h" --without-gossip --without-mingle \
            -- "worker.soft_shutdown_timeout=${LOGS_SOFT_SHUTDOWN_TIMEOUT_S:-10}"
        ;;
    celery_content)
        export REMAP_SIGTERM=SIGQUIT
        exec celery -A roadmap_worker_content.app:celery_app worker -Q content_generation \
            --pool prefork --concurrency "${WORKER_CONCURRENCY:-${CELERY_CONTENT_CONCURRENCY:-3}}" \
            --max-tasks-per-child "${WORKER_MAX_TASKS_PER_CHILD:-200}" \
            --hostname "content@%h" --without-gossip --without-mingle \
            -- "worker.soft_shutdown_timeout=${SOFT_SHUTDOWN_TIMEOUT_S:-20}"
        ;;
    celery_chat)
        # The launcher reads CHAT_WORKER_CONCURRENCY and SOFT_SHUTDOWN_TIMEOUT_S itself.
        export REMAP_SIGTERM=SIGQUIT
        exec roadmap-worker-content chat --without-gossip --without-mingle
        ;;
    web)
        exec uvicorn roadmap_web.app:app --host 0.0.0.0 --port "${PORT:-8000}" \
            --workers "${WEB_CONCURRENCY:-1}" --proxy-headers \
            --timeout-graceful-shutdown "${UVICORN_GRACEFUL_SHUTDOWN_S:-20}"
        ;;
    flower)
        # Flower and Celery read FLOWER_BASIC_AUTH and CELERY_BROKER_URL from the
        # environment, which keeps the password and the broker URL out of the
        # process list.
        [ -n "${FLOWER_BASIC_AUTH:-}" ] \
            || fail "FLOWER_BASIC_AUTH (user:password) must be set; Flower is never served without authentication"
        CELERY_BROKER_URL="${CELERY_BROKER_URL:-${REDIS_URL:-}}"
        [ -n "$CELERY_BROKER_URL" ] || fail "REDIS_URL (or CELERY_BROKER_URL) must be set for flower"
        export CELERY_BROKER_URL
        exec celery flower --address=0.0.0.0 --port="${PORT:-5555}"
        ;;
    migrate)
        exec roadmap-db migrate
        ;;
    "")
        fail "SERVICE_TYPE is not set; expected one of: $roles"
        ;;
    *)
        fail "unknown SERVICE_TYPE '${SERVICE_TYPE}'; expected one of: $roles"
        ;;
esac
