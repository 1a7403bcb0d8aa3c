"""Test settings: the embedded default, with a file database workers can share."""

import os
import tempfile
from pathlib import Path

_tmp = Path(os.environ.setdefault("AGENTOS_TEST_TMP", tempfile.mkdtemp(prefix="agentos-test-")))
# Under pytest-xdist (`-n`) each worker is a session of its own: a folder of
# its own inside the controller's, and so its own var/, files root, database,
# queue and channel prefix (all named after that folder below). The daphne and
# qcluster processes a worker starts inherit the worker's folder as it is.
_xdist = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist and os.environ.get("AGENTOS_TEST_XDIST_WORKER") != _xdist:
    _tmp = Path(tempfile.mkdtemp(prefix=f"{_tmp.name}-{_xdist}-", dir=_tmp))
    os.environ["AGENTOS_TEST_TMP"] = str(_tmp)
    os.environ["AGENTOS_TEST_XDIST_WORKER"] = _xdist
    for _name in ("AGENTOS_VAR_DIR", "AGENTOS_FILES_ROOTS", "AGENTOS_CHANNEL_PREFIX"):
        os.environ.pop(_name, None)
os.environ.setdefault("AGENTOS_VAR_DIR", str(_tmp / "var"))
os.environ.setdefault("AGENTOS_FILES_ROOTS", str(_tmp / "workspace"))
os.environ.setdefault(
    "AGENTOS_ACTION_MODULES",
    "executors.actions.files,executors.actions.files_bulk,executors.actions.excel,"
    "executors.actions.api,executors.actions.verify,executors.actions.browser,"
    "tests.support.actions,tests.support.engine_actions,tests.support.browser_actions",
)
os.environ.setdefault("AGENTOS_LEASE_SECONDS", "3")
# A stopping worker lets a step run this long (the helper waits 15 s).
os.environ.setdefault("AGENTOS_WORKER_DRAIN_S", "8")
os.environ.setdefault("AGENTOS_SECRET_TEST_TOKEN", "s3cr3t-test-token-value")
os.environ.setdefault("AGENTOS_SECRET_API_TEST_TOKEN", "api-s3cr3t-bearer-value")
# HTTP actions reach origins, not hosts: the portal's (the api-health demo,
# the planner's examples) and port 80 of loopback (plans the red-line tests
# validate). Tests that start an HTTP server on an ephemeral port allow that
# server's exact origin in the step's context or with override_settings.
os.environ.setdefault(
    "AGENTOS_API_ALLOWED_HOSTS", "http://127.0.0.1:8000,http://localhost:8000,http://127.0.0.1"
)
os.environ.setdefault("AGENTOS_SECRET_HOSTS_API_TEST_TOKEN", "http://127.0.0.1")
os.environ.setdefault("AGENTOS_SECRET_WEBHOOK_TEST_KEY", "webhook-test-signing-key")
# Test processes import agentos_site.asgi: no web heartbeat thread writing
# to the test database behind a test's back (tests/observability turns it on).
os.environ.setdefault("AGENTOS_WEB_HEARTBEAT", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("AGENTOS_AUDIT_KEY", "test-only-audit-key-0123456789abcdef")
# Other suites may run at the same time against the same PostgreSQL and Redis:
# everything shared is named after this session's temporary folder, which the
# qcluster and daphne processes a test starts inherit (AGENTOS_TEST_TMP).
SESSION = _tmp.name.lower().replace("-", "_")
os.environ.setdefault("AGENTOS_CHANNEL_PREFIX", f"agentos-{SESSION}")

from agentos_site.settings import *  # noqa: E402,F403
from agentos_site.settings import (  # noqa: E402
    DATABASES,
    INSTALLED_APPS,
    Q_CLUSTER,
    REDIS_URL,
    VAR_DIR,
)

Path(os.environ["AGENTOS_FILES_ROOTS"].split(",")[0]).mkdir(parents=True, exist_ok=True)
VAR_DIR.mkdir(parents=True, exist_ok=True)
(VAR_DIR / "static").mkdir(exist_ok=True)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so a qcluster subprocess sees what the test wrote.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:  # pytest-django creates and drops this database
    DATABASES["default"]["TEST"] = {"NAME": f"test_{SESSION}"}
if REDIS_URL:
    Q_CLUSTER["name"] = f"agentos-{SESSION}"

# seed_scale (bench/seeding.py) for the scale tests: benchmark tooling,
# installed here and by bench/settings.py, never in the product.
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]

# The portals' never-loading page and open redirect exist only here.
ROOT_URLCONF = "tests.urls"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Many tests log in (and fail on purpose) from 127.0.0.1: throttling stays on,
# with a limit no test reaches by accident; tests/accounts/test_login_throttle.py
# lowers it where throttling is what is tested.
AXES_FAILURE_LIMIT = 1000
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
AGENTOS_BROWSER_SPARES = (
    1  # one pre-started browser per runner; tests/executors/test_browser.py covers a pool
)
