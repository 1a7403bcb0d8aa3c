# Sourced by start.sh and test.sh: create .venv and install the project into it.
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
set -euo pipefail

# The browser actions drive the system's Chromium; `playwright install` cannot
# download browsers here, so take Debian's package when it is missing.
if [ ! -x "${AGENTOS_BROWSER_EXECUTABLE:-/usr/bin/chromium}" ] && ! command -v chromium >/dev/null; then
    echo "==> installing Debian's chromium for the browser actions"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

PYTHON_BIN=${PYTHON:-python3}
if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "AgentOS needs Python 3.11 or newer ($PYTHON_BIN is $("$PYTHON_BIN" -V 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON_BIN" -m venv .venv
fi
PY="$PWD/.venv/bin/python"
stamp=".venv/.agentos-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing AgentOS and its dependencies into .venv"
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$PY" -m pip install --quiet --disable-pip-version-check -e ".[test,dev]"
    echo "$want" > "$stamp"
fi
export PY

# Actions run as an unprivileged user of their own when the worker runs as
# root (docs/security.md): create it, and let it reach the interpreter and the
# project (a Python under /root needs search permission on /root).
ACTION_USER=${AGENTOS_ACTION_USER:-agentos-action}
if [ "$(id -u)" -eq 0 ] && [ "$ACTION_USER" != "none" ]; then
    if ! id "$ACTION_USER" >/dev/null 2>&1; then
        echo "==> creating the system user $ACTION_USER for action processes"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$ACTION_USER"
    fi
    "$PY" -m executors.sandbox "$ACTION_USER"
fi
