#!/usr/bin/env bash
# Set everything up, run the checks, then the whole test suite once per backend:
#   sqlite    the embedded default (SQLite, django-q2's ORM broker, in-memory layer)
#   postgres  PostgreSQL + Redis (django-q2's Redis broker, channels_redis);
#             scripts/services.sh starts them when installed but stopped
# AGENTOS_TEST_BACKENDS chooses (e.g. `sqlite`); by default both run, the
# postgres pass only where PostgreSQL and Redis are installed (CI asks for
# both explicitly). Arguments go to pytest, in every pass.
# Before the suite: ruff check, ruff format --check, mypy and
# `makemigrations --check` (AGENTOS_TEST_CHECKS=0 skips them).
# The passes run side by side, each into its own log printed when both are
# done, so CI's time is the slower pass, not the sum (tests/settings.py gives
# each session its own database, queue and channel prefix);
# AGENTOS_TEST_PARALLEL=0 runs them one after the other, printing as they go.
# The sqlite pass measures branch coverage in every process the tests start
# (action processes included) and fails under the floor in pyproject.toml
# (docs/testing.md); AGENTOS_TEST_COVERAGE=0 runs it without.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

if [ "${AGENTOS_TEST_CHECKS:-1}" != "0" ]; then
    echo "==> checks: ruff, ruff format, mypy, makemigrations"
    "$PY" -m ruff check .
    "$PY" -m ruff format --check .
    "$PY" -m mypy
    env -u DATABASE_URL -u REDIS_URL "$PY" manage.py makemigrations --check --dry-run \
        --settings tests.settings
fi

# AGENTOS_TEST_WORKERS=N runs each pass on N pytest-xdist processes (each a
# session of its own: tests/settings.py); by default one. Not the default
# yet: on a loaded machine a second process made worker starts outlast the
# tests' 30 s deadlines (docs/testing.md).
workers=${AGENTOS_TEST_WORKERS:-1}
if ! [[ "$workers" =~ ^[0-9]+$ ]]; then
    echo "AGENTOS_TEST_WORKERS: a number of processes, not '$workers'" >&2
    exit 2
fi
if [ "$workers" -gt 1 ]; then
    set -- -n "$workers" --dist worksteal "$@"
fi

backends=${AGENTOS_TEST_BACKENDS:-}
if [ -z "$backends" ]; then
    backends=sqlite
    if command -v pg_ctlcluster >/dev/null && command -v redis-server >/dev/null; then
        backends="sqlite,postgres"
    fi
fi

run_pass() {
    local backend=$1
    shift
    case "$backend" in
        sqlite)
            echo "==> test pass: $backend (embedded default)"
            env -u DATABASE_URL -u REDIS_URL "$PY" manage.py check --settings tests.settings \
                >/dev/null
            if [ "${AGENTOS_TEST_COVERAGE:-1}" = "0" ]; then
                env -u DATABASE_URL -u REDIS_URL "$PY" -m pytest "$@"
            else
                # The action processes drop to the action user: the data
                # folder must take their files too.
                local data
                data=$(mktemp -d /tmp/agentos-coverage-XXXXXX)
                chmod 1777 "$data"
                local status=0
                env -u DATABASE_URL -u REDIS_URL COVERAGE_FILE="$data/.coverage" \
                    "$PY" -m coverage run -m pytest "$@" || status=$?
                echo "==> coverage (branches included; floor in pyproject.toml)"
                COVERAGE_FILE="$data/.coverage" "$PY" -m coverage combine "$data" 2>&1 | tail -1
                COVERAGE_FILE="$data/.coverage" "$PY" -m coverage report || status=$?
                rm -rf "$data"
                return $status
            fi
            ;;
        postgres)
            echo "==> test pass: $backend (PostgreSQL + Redis)"
            # tests/settings.py makes the test database, the django-q2 queue and
            # the channel prefix unique per session: suites may run side by side.
            DATABASE_URL=${AGENTOS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/agentos} \
                REDIS_URL=${AGENTOS_TEST_REDIS_URL:-redis://127.0.0.1:6379/1} \
                bash -c '"$PY" manage.py check --settings tests.settings >/dev/null &&
                         exec "$PY" -m pytest "$@"' pytest "$@"
            ;;
    esac
}

for backend in ${backends//,/ }; do
    case "$backend" in
        sqlite) ;;
        postgres) bash scripts/services.sh ;;
        *)
            echo "AGENTOS_TEST_BACKENDS: unknown backend '$backend' (sqlite, postgres)" >&2
            exit 2
            ;;
    esac
done

failed=()
if [ "${AGENTOS_TEST_PARALLEL:-1}" = "0" ]; then
    for backend in ${backends//,/ }; do
        run_pass "$backend" "$@" || failed+=("$backend")
    done
else
    logs=$(mktemp -d)
    trap 'rm -rf "$logs"' EXIT
    declare -A pids=()
    for backend in ${backends//,/ }; do
        echo "==> starting test pass: $backend (log printed when all passes end)"
        run_pass "$backend" "$@" >"$logs/$backend.log" 2>&1 &
        pids[$backend]=$!
    done
    for backend in ${backends//,/ }; do
        wait "${pids[$backend]}" || failed+=("$backend")
    done
    for backend in ${backends//,/ }; do
        cat "$logs/$backend.log"
    done
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "==> failed test passes: ${failed[*]}" >&2
    exit 1
fi
