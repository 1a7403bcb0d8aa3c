#!/usr/bin/env bash
# Set everything up and run the whole test suite, once per backend:
#   sqlite    the embedded default (SQLite, django-q2's ORM broker, in-memory layer)
#   postgres  PostgreSQL + Redis (django-q2's Redis broker, channels_redis);
#             scripts/services.sh starts them when installed but stopped
# AGENTOS_TEST_BACKENDS chooses (e.g. `sqlite`); by default both run, the
# postgres pass only where PostgreSQL and Redis are installed (CI asks for
# both explicitly). Arguments go to pytest, in every pass.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

backends=${AGENTOS_TEST_BACKENDS:-}
if [ -z "$backends" ]; then
    backends=sqlite
    if command -v pg_ctlcluster >/dev/null && command -v redis-server >/dev/null; then
        backends="sqlite,postgres"
    fi
fi

failed=()
for backend in ${backends//,/ }; do
    case "$backend" in
        sqlite)
            echo "==> test pass: $backend (embedded default)"
            env -u DATABASE_URL -u REDIS_URL "$PY" manage.py check --settings tests.settings \
                >/dev/null
            env -u DATABASE_URL -u REDIS_URL "$PY" -m pytest "$@" || failed+=("$backend")
            ;;
        postgres)
            echo "==> test pass: $backend (PostgreSQL + Redis)"
            bash scripts/services.sh
            # tests/settings.py makes the test database, the django-q2 queue and
            # the channel prefix unique per session: suites may run side by side.
            export DATABASE_URL=${AGENTOS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/agentos}
            export REDIS_URL=${AGENTOS_TEST_REDIS_URL:-redis://127.0.0.1:6379/1}
            "$PY" manage.py check --settings tests.settings >/dev/null
            "$PY" -m pytest "$@" || failed+=("$backend")
            unset DATABASE_URL REDIS_URL
            ;;
        *)
            echo "AGENTOS_TEST_BACKENDS: unknown backend '$backend' (sqlite, postgres)" >&2
            exit 2
            ;;
    esac
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "==> failed test passes: ${failed[*]}" >&2
    exit 1
fi
