#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 (5432, 6379): start the
# ones that are installed but stopped; never install, never restart. Used by
# test.sh for its PostgreSQL + Redis pass. Exit 1, saying why, when one is
# missing or does not come up.
set -euo pipefail

PG_PORT=${AGENTOS_PG_PORT:-5432}
REDIS_PORT=${AGENTOS_REDIS_PORT:-6379}
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

listening() {  # listening PORT: something accepts TCP connections on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_listening() {  # wait_listening PORT NAME
    for _ in $(seq 1 100); do
        if listening "$1"; then return 0; fi
        sleep 0.1
    done
    echo "services: $2 did not start listening on 127.0.0.1:$1" >&2
    return 1
}

if ! listening "$PG_PORT"; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        echo "==> starting PostgreSQL $version"
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
        wait_listening "$PG_PORT" PostgreSQL
    else
        echo "services: PostgreSQL is not installed (no pg_ctlcluster) and nothing" \
             "listens on 127.0.0.1:$PG_PORT" >&2
        exit 1
    fi
fi

if ! listening "$REDIS_PORT"; then
    if command -v redis-server >/dev/null; then
        echo "==> starting Redis"
        args=(--daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no)
        if [ -d /var/lib/redis ]; then args+=(--dir /var/lib/redis); fi
        if [ -d /var/log/redis ]; then args+=(--logfile /var/log/redis/ci.log); fi
        $SUDO redis-server "${args[@]}"
        wait_listening "$REDIS_PORT" Redis
    else
        echo "services: Redis is not installed (no redis-server) and nothing listens" \
             "on 127.0.0.1:$REDIS_PORT" >&2
        exit 1
    fi
fi
