#!/usr/bin/env bash
# Set everything up and start the portal: daphne (web) and a worker cluster
# on the embedded default (SQLite + django-q2's ORM broker). Ctrl-C or SIGTERM
# (to this script or its whole process group) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

HOST=${AGENTOS_HOST:-127.0.0.1}
PORT=${AGENTOS_PORT:-8000}
PASSWORD=${AGENTOS_DEMO_PASSWORD:-agentos}
export AGENTOS_PORTAL_BASE_URL=${AGENTOS_PORTAL_BASE_URL:-http://$HOST:$PORT}

"$PY" manage.py migrate --noinput
# Checkpoint the event chains at once: the first line seals events written
# before the audit key existed (docs/security.md, "History").
"$PY" manage.py audit_checkpoint >/dev/null
"$PY" manage.py seed_demo --password "$PASSWORD"
"$PY" manage.py collectstatic --noinput -v0
"$PY" manage.py check --deploy --fail-level ERROR >/dev/null 2>&1 || "$PY" manage.py check

# The same commands as deploy/ (docs/deployment.md): daphne that closes
# websockets with "service restart", and the worker that drains on SIGTERM.
"$PY" -m agentos_site.web -b "$HOST" -p "$PORT" &
web=$!
# The worker in a session of its own, so that it hears one SIGTERM (from
# stop() below) and drains: a second one, from a signal to this script's
# whole group, would cut its steps short. It stops cleanly either way.
setsid "$PY" manage.py worker &
worker=$!

stop() {
    trap - INT TERM EXIT
    echo; echo "==> stopping web and worker"
    kill -TERM "$web" "$worker" 2>/dev/null || true
    wait "$web" "$worker" 2>/dev/null || true
    echo "==> stopped"
}
trap stop INT TERM EXIT

cat <<MSG

  AgentOS is running at http://$HOST:$PORT/admin/
  Demo logins (password: $PASSWORD): operator, reviewer, auditor, admin
  Press Ctrl-C to stop the web server and the worker.

MSG
# Either process ending on its own ends the portal.
wait -n "$web" "$worker" || true
