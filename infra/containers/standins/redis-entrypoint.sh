#!/bin/sh
# Entrypoint of the Redis stand-in image. Like the official image's: arguments
# that start with "-" are options of redis-server, which runs as the redis user
# without protected mode (the container's network is what protects it); any
# other command runs as given.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
    shift
    if [ "$(id -u)" = 0 ]; then
        exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no "$@"
    fi
    exec redis-server --protected-mode no "$@"
fi
exec "$@"
