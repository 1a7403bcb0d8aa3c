"""Settings for AgentOS, read from the environment (see README, Configuration)."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from agentos_site.env import (
    SECRET_HOSTS_PREFIX,
    allowed_origins,
    development_secret_key,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    origin_of,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AGENTOS_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG=0")
    SECRET_KEY = development_secret_key(VAR_DIR)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "ninja",
    "workflows",
    "approvals",
    "accounts",
    "portals",
    # After accounts: its audit receivers count a failure before axes
    # decides on a lockout (accounts.login_audit).
    "axes",
]

MIDDLEWARE = [
    # First, so that it sees every error answer under /api/ (docs/api.md).
    "agentos_site.middleware.ApiJsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "agentos_site.middleware.RefuseNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last but one, as django-axes asks (nothing it needs comes after it):
    # turns a lockout into its 429 answer.
    "axes.middleware.AxesMiddleware",
    # Innermost: the chain runs synchronously in one thread under daphne.
    "agentos_site.middleware.SynchronousChainMiddleware",
]

ROOT_URLCONF = "agentos_site.urls"
ASGI_APPLICATION = "agentos_site.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The embedded default is one SQLite file in WAL mode; IMMEDIATE transactions
# take the write lock up front, so concurrent writers queue instead of failing
# with "database is locked" halfway through.
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
_database_url = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'agentos.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
else:  # a server that may restart: check a reused connection before using it
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: the web process (daphne, agentos_site/asgi.py) takes its
# connections from a psycopg pool of at most this many (0: a new connection
# for each request, as before). Workers keep one connection each instead
# (workflows/cluster.py); the pool is never used by a forked process.
AGENTOS_WEB_DB_POOL = int(env_float("AGENTOS_WEB_DB_POOL", 16))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Login throttling (django-axes): after AGENTOS_LOGIN_FAILURE_LIMIT failures
# for one user name, or from one address, logins from it are refused with
# 429 for AGENTOS_LOGIN_COOLOFF_S. Counts are rows, so they hold on SQLite and
# PostgreSQL and across processes. The address is REMOTE_ADDR: behind a
# proxy, set AXES_IPWARE_* (see docs/security.md) or every client is the proxy.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AGENTOS_LOGIN_FAILURE_LIMIT", 5, 1, 10000)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("AGENTOS_LOGIN_COOLOFF_S", 900, 1, 7 * 86400))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Not reset by a success: an attacker with one valid account would clear
# the address's count with it between guesses. Counts expire after the
# cool-off instead.
AXES_RESET_ON_SUCCESS = False
# A refused attempt during a lockout neither extends it nor writes a row.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_COOLOFF_MESSAGE = "Too many failed logins: try again later."
AXES_VERBOSE = False
# Lockouts are audit events; axes' own tables stay out of the admin (whose
# every view has a role rule in tests/api/test_rbac.py). Unlock early with
# `manage.py axes_reset_username NAME` or `axes_reset_ip ADDRESS`.
AXES_ENABLE_ADMIN = False
# Failed logins from one address within this many seconds are one audit
# event (the first) plus one summary (accounts.login_audit).
AGENTOS_LOGIN_AUDIT_WINDOW_S = env_int("AGENTOS_LOGIN_AUDIT_WINDOW_S", 600, 1, 86400)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env_str("AGENTOS_MEDIA_ROOT", str(VAR_DIR / "media"))).resolve()
MEDIA_URL = "media/"

LOGIN_URL = "admin:login"

# django-q2. The ORM broker needs no other server. A task advances a run for at
# most AGENTOS_TASK_BUDGET_S and then re-queues it, so `timeout` bounds one task
# and `retry` (the broker's redelivery of an unacknowledged task) stays above it.
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER: dict = {
    "name": "agentos",
    "workers": int(env_float("AGENTOS_WORKERS", 2)),
    "timeout": 1800,
    "retry": 1900,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 500,
    # The ORM broker's pusher is woken by the commit that queues a task
    # (workflows.broker); the poll only finds what a lost wake-up left.
    "poll": env_float("AGENTOS_Q_POLL", 1.0),
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "workflows.broker.WakingORM"

# The engine.
AGENTOS_LEASE_SECONDS = env_float("AGENTOS_LEASE_SECONDS", 30)
# A queued run nobody picked up for this long (its task was lost with a
# killed cluster or a restarted Redis) is queued again by the schedule.
AGENTOS_REQUEUE_AFTER_S = env_float("AGENTOS_REQUEUE_AFTER_S", 30)
# How long a worker waits for the database to come back (a restart) before
# giving its task up; its run is then recovered when the lease expires.
AGENTOS_DB_RETRY_S = env_float("AGENTOS_DB_RETRY_S", 60)
AGENTOS_TASK_BUDGET_S = env_float("AGENTOS_TASK_BUDGET_S", 600)
AGENTOS_MAX_NODE_TIMEOUT_S = 900
AGENTOS_ACTION_MODULES = env_list(
    "AGENTOS_ACTION_MODULES",
    [
        "executors.actions.files",
        "executors.actions.files_bulk",
        "executors.actions.excel",
        "executors.actions.api",
        "executors.actions.verify",
        "executors.actions.browser",
    ],
)
AGENTOS_FILES_ROOTS = [
    str(Path(p).resolve()) for p in env_list("AGENTOS_FILES_ROOTS", [str(VAR_DIR / "workspace")])
]
AGENTOS_PORTAL_BASE_URL = env_str("AGENTOS_PORTAL_BASE_URL", "http://127.0.0.1:8000")
# Origins (scheme://host[:port]) HTTP actions may call; a bare host means its
# default ports only (http 80, https 443). By default only this site's own
# origin (the api-health demo). See docs/configuration.md.
AGENTOS_API_ALLOWED_HOSTS = allowed_origins(
    "AGENTOS_API_ALLOWED_HOSTS", [origin_of(AGENTOS_PORTAL_BASE_URL)]
)
AGENTOS_BROWSER_EXECUTABLE = env_str(
    "AGENTOS_BROWSER_EXECUTABLE", shutil.which("chromium") or "/usr/bin/chromium"
)
# Browsers each worker's runner starts ahead of browser actions (one per
# action; refilled when idle). Three cover the onboarding's three portals;
# each idle one holds ~330 MB (PSS, docs/benchmarks.md).
AGENTOS_BROWSER_SPARES = env_int("AGENTOS_BROWSER_SPARES", 3, 0, 8)
# ...given up once the worker ran no browser action for this long (0: kept
# for good), so an idle portal holds no browser; the next browser action
# starts one beside it and the pool refills after it.
AGENTOS_BROWSER_SPARES_IDLE_S = max(0.0, env_float("AGENTOS_BROWSER_SPARES_IDLE_S", 60))
# The planner: "builtin" (deterministic phrasings, no network) or "openai" (any
# OpenAI-compatible chat-completions server). The key is a secret: it is only
# ever sent to that server, never logged or stored.
AGENTOS_PLANNER = env_str("AGENTOS_PLANNER", "builtin")
if AGENTOS_PLANNER not in ("builtin", "openai"):
    raise ImproperlyConfigured("AGENTOS_PLANNER must be builtin or openai")
AGENTOS_LLM_BASE_URL = env_str("AGENTOS_LLM_BASE_URL")
AGENTOS_LLM_MODEL = env_str("AGENTOS_LLM_MODEL")
AGENTOS_LLM_API_KEY = env_str("AGENTOS_LLM_API_KEY")
AGENTOS_LLM_TIMEOUT_S = env_float("AGENTOS_LLM_TIMEOUT_S", 60)

# Secrets that actions ask for by name: AGENTOS_SECRET_<NAME> in the environment
# is the secret NAME. Values never enter plans, contexts, events or logs.
AGENTOS_SECRETS: dict[str, str] = {
    key.removeprefix("AGENTOS_SECRET_"): value
    for key, value in os.environ.items()
    if key.startswith("AGENTOS_SECRET_") and value and not key.startswith(SECRET_HOSTS_PREFIX)
}
# Where each secret may be sent: AGENTOS_SECRET_HOSTS_<NAME> lists the origins
# (comma-separated, like AGENTOS_API_ALLOWED_HOSTS). An HTTP action sends a
# secret only to its origins; a secret bound to none is sent nowhere.
AGENTOS_SECRET_HOSTS: dict[str, list[str]] = {
    key.removeprefix(SECRET_HOSTS_PREFIX): allowed_origins(key, [])
    for key in os.environ
    if key.startswith(SECRET_HOSTS_PREFIX)
}
# The browser actions log in to the mock portals with these secrets; seed_demo
# creates matching portal accounts. Development only: production sets them.
PORTAL_DEMO_SECRETS = {
    "HR_PORTAL_USER": "hr-agent",
    "HR_PORTAL_PASSWORD": "hr-demo-password",
    "IT_PORTAL_USER": "it-agent",
    "IT_PORTAL_PASSWORD": "it-demo-password",
    "PROCUREMENT_PORTAL_USER": "buyer-agent",
    "PROCUREMENT_PORTAL_PASSWORD": "procurement-demo-password",
}
if DEBUG:
    for _name, _value in PORTAL_DEMO_SECRETS.items():
        AGENTOS_SECRETS.setdefault(_name, _value)
# The audit log (docs/security.md, "History"): events are chained with
# HMAC-SHA256 under AGENTOS_AUDIT_KEY, a key kept outside the database;
# AGENTOS_AUDIT_OLD_KEYS still verify what earlier keys signed. Signed
# checkpoints of every chain head go to an append-only file outside the
# database every AGENTOS_AUDIT_CHECKPOINT_MINUTES.
AGENTOS_AUDIT_KEY = env_str("AGENTOS_AUDIT_KEY")
if not AGENTOS_AUDIT_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("AGENTOS_AUDIT_KEY is required when DJANGO_DEBUG=0")
    AGENTOS_AUDIT_KEY = development_secret_key(VAR_DIR, "audit_key")
AGENTOS_AUDIT_OLD_KEYS = env_list("AGENTOS_AUDIT_OLD_KEYS", [])
for _key in (AGENTOS_AUDIT_KEY, *AGENTOS_AUDIT_OLD_KEYS):
    if len(_key) < 32:
        raise ImproperlyConfigured(
            "AGENTOS_AUDIT_KEY and AGENTOS_AUDIT_OLD_KEYS need at least 32 characters each"
        )
AGENTOS_AUDIT_CHECKPOINT_DIR = Path(
    env_str("AGENTOS_AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "audit"))
).resolve()
AGENTOS_AUDIT_CHECKPOINT_MINUTES = env_int("AGENTOS_AUDIT_CHECKPOINT_MINUTES", 1, 1, 60)


# Live status (Django Channels). With REDIS_URL workers publish to Redis
# directly; without it the web process relays new events from the database
# to its in-memory layer every AGENTOS_LIVE_POLL_S seconds (no extra server).
def redis_channel_layer(url: str, prefix: str) -> dict:
    """The Redis channel layer's settings.

    A consumer waits for its next message with BZPOPMIN for 5 s
    (channels_redis' brpop_timeout), and redis-py reads every reply within
    its socket timeout, 5 s by default: on a busy machine the read gave up
    just before the empty reply came, and the TimeoutError ended the
    consumer (its websocket went deaf). Reads wait longer than the pop.
    """
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": 30, "socket_connect_timeout": 5}],
            "prefix": prefix,
        },
    }


if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": redis_channel_layer(REDIS_URL, env_str("AGENTOS_CHANNEL_PREFIX", "agentos"))
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds the API rate limit's counts: with REDIS_URL one count per
# token for every web process; without it each process counts its own (the
# embedded default runs one).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("AGENTOS_CHANNEL_PREFIX", "agentos"),
        }
    }
AGENTOS_LIVE_POLL_S = env_float("AGENTOS_LIVE_POLL_S", 0.03)
# How long the relay waits for an event id that was skipped (a transaction
# still committing, on PostgreSQL) before taking it for a rolled-back insert.
AGENTOS_LIVE_GAP_S = env_float("AGENTOS_LIVE_GAP_S", 10)
# How often an open websocket re-reads its user and permissions (a
# deactivated or regrouped user is also disconnected at once, see
# approvals.live.user_changed); kept under a minute.
AGENTOS_WS_RECHECK_S = env_float("AGENTOS_WS_RECHECK_S", 30)
if not 0 < AGENTOS_WS_RECHECK_S <= 60:
    raise ImproperlyConfigured(
        "AGENTOS_WS_RECHECK_S must be more than 0 and at most 60 "
        f"(seconds), not {AGENTOS_WS_RECHECK_S}"
    )

# Notifications: links point at AGENTOS_BASE_URL; email goes to the console in
# development and through SMTP (EMAIL_HOST...) otherwise.
AGENTOS_BASE_URL = env_str("AGENTOS_BASE_URL", AGENTOS_PORTAL_BASE_URL)
AGENTOS_EMAIL_FROM = env_str("AGENTOS_EMAIL_FROM", "agentos@localhost")
# Webhooks: the origins their URLs may name (same rules and address checks
# as AGENTOS_API_ALLOWED_HOSTS; none by default), and how old a signed
# delivery's timestamp may be before receivers should refuse it.
AGENTOS_WEBHOOK_ALLOWED_HOSTS = allowed_origins("AGENTOS_WEBHOOK_ALLOWED_HOSTS", [])
AGENTOS_WEBHOOK_TOLERANCE_S = env_int("AGENTOS_WEBHOOK_TOLERANCE_S", 300, 30, 3600)
DEFAULT_FROM_EMAIL = AGENTOS_EMAIL_FROM
EMAIL_BACKEND = env_str(
    "AGENTOS_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("AGENTOS_SMTP_HOST", "localhost")
EMAIL_PORT = int(env_float("AGENTOS_SMTP_PORT", 25))
# The REST API: requests per minute a token may send (0: unlimited). Counted
# in Django's cache, so per process unless a shared cache is configured.
AGENTOS_API_RATE_LIMIT = int(env_float("AGENTOS_API_RATE_LIMIT", 600))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("AGENTOS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django-q": {"level": env_str("AGENTOS_Q_LOG_LEVEL", "WARNING")},
        "axes": {"level": "WARNING"},
    },
}

# --- Action sandbox (issue 10, item 14; docs/security.md) ---------------------
# Actions run as this user when the worker runs as root and the user exists
# (scripts/setup.sh creates it); "none" keeps them as the worker's user. The
# limits apply per action process (and to what it starts); the process count
# to every process of the action user together.
AGENTOS_ACTION_USER = env_str("AGENTOS_ACTION_USER", "agentos-action")
AGENTOS_ACTION_MAX_PROCESSES = env_int("AGENTOS_ACTION_MAX_PROCESSES", 4096, 256, 1 << 22)
AGENTOS_ACTION_MAX_FILE_MB = env_int("AGENTOS_ACTION_MAX_FILE_MB", 1024, 1, 1 << 20)
AGENTOS_ACTION_MAX_CPU_S = env_int("AGENTOS_ACTION_MAX_CPU_S", 900, 10, 1 << 20)
AGENTOS_ACTION_BROWSER_MEMORY_MB = env_int("AGENTOS_ACTION_BROWSER_MEMORY_MB", 2048, 1024, 1 << 20)
if AGENTOS_ACTION_USER.lower() != "none" and os.geteuid() == 0:
    import pwd as _pwd

    try:
        _pwd.getpwnam(AGENTOS_ACTION_USER)
    except KeyError:
        pass
    else:
        # What these processes create (databases, evidence, files in the
        # shared roots) is then never readable by the action user unless a
        # folder shares it with its group (executors.sandbox).
        os.umask(0o007)
        # Files var/ held before (a database created 0644 by an earlier
        # version, its WAL, the secret key): closed to others too, since the
        # action user may pass through var/ to the workspace and media.
        if VAR_DIR.is_dir():
            for _entry in os.scandir(VAR_DIR):
                if _entry.is_file(follow_symlinks=False) and _entry.stat().st_mode & 0o007:
                    os.chmod(_entry.path, _entry.stat().st_mode & 0o7770)

# --- HTTPS and Content-Security-Policy (issue 10, item 16; docs/security.md) --
# AGENTOS_HTTPS=1 behind TLS: secure cookies, HSTS and the redirect to https,
# so `manage.py check --deploy` is clean. Behind a proxy that terminates TLS,
# AGENTOS_TRUST_X_FORWARDED_PROTO=1 (only if the proxy sets that header on
# every request, overwriting the client's) tells Django the request was https.
AGENTOS_HTTPS = env_bool("AGENTOS_HTTPS", False)
if AGENTOS_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("AGENTOS_HSTS_SECONDS", 31_536_000, 0, 63_072_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("AGENTOS_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("AGENTOS_HSTS_PRELOAD", True)
if env_bool("AGENTOS_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# django-csp: scripts, styles and connections from this origin only (no inline
# code), on the inbox, the portals and every page but the admin's (Django's
# admin and its run-page overrides still use inline code) and the API's docs.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/admin/", "/api/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Integrations (issue 14; docs/integrations.md, docs/actions.md).
# Actions from other packages: the entry points of the group `agentos.actions`
# are loaded after AGENTOS_ACTION_MODULES; a broken package is left out and
# reported by the system check agentos.W020.
AGENTOS_ACTION_PLUGINS = env_bool("AGENTOS_ACTION_PLUGINS", True)
# Slack approvals (docs/integrations.md). Without the bot token Slack is off:
# nothing is posted and /integrations/slack/interactions answers 404.
AGENTOS_SLACK_BOT_TOKEN = env_str("AGENTOS_SLACK_BOT_TOKEN")
AGENTOS_SLACK_SIGNING_SECRET = env_str("AGENTOS_SLACK_SIGNING_SECRET")
AGENTOS_SLACK_API_URL = env_str("AGENTOS_SLACK_API_URL", "https://slack.com/api")
# How often a failed Slack call (an error, a 429) is tried before giving up.
AGENTOS_SLACK_MAX_ATTEMPTS = env_int("AGENTOS_SLACK_MAX_ATTEMPTS", 8, 1, 50)
# Operating it (docs/deployment.md): how long a stopping worker (`manage.py
# worker`) lets a step in flight run before it cuts it and hands the run on.
AGENTOS_WORKER_DRAIN_S = env_float("AGENTOS_WORKER_DRAIN_S", 60)
# Plans as graphs (issue 11): how many actions of one run's parallel block or
# map may run at once in one worker (each on a runner of its own).
AGENTOS_RUN_PARALLELISM = env_int("AGENTOS_RUN_PARALLELISM", 4, 1, 16)
# --- Observability (issue 13; docs/observability.md) --------------------------
# Heartbeats of worker and web processes, GET /metrics, the operations
# dashboard, the SLA report and machine-readable logs.
INSTALLED_APPS.append("observability")
# Every worker (and daphne) writes a heartbeat row this often; one younger
# than AGENTOS_HEARTBEAT_LIVE_S counts as live (health, metrics, admin).
AGENTOS_HEARTBEAT_S = env_float("AGENTOS_HEARTBEAT_S", 10)
AGENTOS_HEARTBEAT_LIVE_S = env_float("AGENTOS_HEARTBEAT_LIVE_S", 60)
AGENTOS_WEB_HEARTBEAT = env_bool("AGENTOS_WEB_HEARTBEAT", True)
# Bearer token for GET /metrics (Prometheus); unset, the page answers 404.
AGENTOS_METRICS_TOKEN = env_str("AGENTOS_METRICS_TOKEN")
# Steps and decisions older than this are folded into the histograms' rollup
# (observability.rollup); longer than any commit of a step or a decision.
AGENTOS_METRICS_SETTLE_S = env_float("AGENTOS_METRICS_SETTLE_S", 300)
# "plain" (the default) or "json": one JSON object per line, with the run id,
# node path and correlation id when a log line has them.
AGENTOS_LOG_FORMAT = env_str("AGENTOS_LOG_FORMAT", "plain")
if AGENTOS_LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "observability.logging.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
# Every request gets a correlation id (the caller's X-Correlation-ID when
# sane, else a new one), bound for its log lines and echoed in the answer.
MIDDLEWARE.insert(1, "observability.middleware.CorrelationIdMiddleware")
