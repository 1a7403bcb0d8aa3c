"""Settings for AgentOS, read from the environment (see README, Configuration)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from agentos_site.env import (
    development_secret_key,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
    "poll": env_float("AGENTOS_Q_POLL", 0.02),
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

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
    ["executors.actions.files", "executors.actions.files_bulk", "executors.actions.excel",
     "executors.actions.api", "executors.actions.verify", "executors.actions.browser"],
)
AGENTOS_FILES_ROOTS = [
    str(Path(p).resolve()) for p in env_list("AGENTOS_FILES_ROOTS", [str(VAR_DIR / "workspace")])
]
AGENTOS_API_ALLOWED_HOSTS = env_list("AGENTOS_API_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
AGENTOS_PORTAL_BASE_URL = env_str("AGENTOS_PORTAL_BASE_URL", "http://127.0.0.1:8000")
AGENTOS_BROWSER_EXECUTABLE = env_str(
    "AGENTOS_BROWSER_EXECUTABLE", shutil.which("chromium") or "/usr/bin/chromium"
)
# Browsers each worker's runner starts ahead of browser actions (one per
# action; refilled when idle). Three cover the onboarding's three portals;
# each idle one holds ~150 MB.
AGENTOS_BROWSER_SPARES = env_int("AGENTOS_BROWSER_SPARES", 3, 0, 8)
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
    if key.startswith("AGENTOS_SECRET_") and value
}
# The browser actions log in to the mock portals with these secrets; seed_demo
# creates matching portal accounts. Development only: production sets them.
PORTAL_DEMO_SECRETS = {
    "HR_PORTAL_USER": "hr-agent", "HR_PORTAL_PASSWORD": "hr-demo-password",
    "IT_PORTAL_USER": "it-agent", "IT_PORTAL_PASSWORD": "it-demo-password",
    "PROCUREMENT_PORTAL_USER": "buyer-agent",
    "PROCUREMENT_PORTAL_PASSWORD": "procurement-demo-password",
}
if DEBUG:
    for _name, _value in PORTAL_DEMO_SECRETS.items():
        AGENTOS_SECRETS.setdefault(_name, _value)
# A page that never finishes loading and an open redirect, for tests only.
PORTALS_TEST_ENDPOINTS = False
PORTALS_HANG_MAX_S = 120.0

# Live status (Django Channels). With REDIS_URL workers publish to Redis
# directly; without it the web process relays new events from the database
# to its in-memory layer every AGENTOS_LIVE_POLL_S seconds (no extra server).
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL],
                   "prefix": env_str("AGENTOS_CHANNEL_PREFIX", "agentos")},
    }}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds the API rate limit's counts: with REDIS_URL one count per
# token for every web process; without it each process counts its own (the
# embedded default runs one).
if REDIS_URL:
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("AGENTOS_CHANNEL_PREFIX", "agentos"),
    }}
AGENTOS_LIVE_POLL_S = env_float("AGENTOS_LIVE_POLL_S", 0.03)
# How long the relay waits for an event id that was skipped (a transaction
# still committing, on PostgreSQL) before taking it for a rolled-back insert.
AGENTOS_LIVE_GAP_S = env_float("AGENTOS_LIVE_GAP_S", 10)

# Notifications: links point at AGENTOS_BASE_URL; email goes to the console in
# development and through SMTP (EMAIL_HOST...) otherwise.
AGENTOS_BASE_URL = env_str("AGENTOS_BASE_URL", AGENTOS_PORTAL_BASE_URL)
AGENTOS_EMAIL_FROM = env_str("AGENTOS_EMAIL_FROM", "agentos@localhost")
DEFAULT_FROM_EMAIL = AGENTOS_EMAIL_FROM
EMAIL_BACKEND = env_str(
    "AGENTOS_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG
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
    "loggers": {"django-q": {"level": env_str("AGENTOS_Q_LOG_LEVEL", "WARNING")}},
}
