"""The web process's PostgreSQL connections, from a psycopg pool.

With ``CONN_MAX_AGE = 0`` each request opened a connection (on PostgreSQL a
new server process, ~5 ms on the path of every click, the inbox's approve
among them) and closed it at the end. Django advises against persistent
connections under ASGI; its answer is psycopg's pool (Django 5.1+), where a
request's connection goes back to the pool at the request's end.

Only daphne's process uses it (``agentos_site/asgi.py`` calls
:func:`pool_web_connections`): the settings are shared with the worker, which
keeps one connection per worker process (``CONN_MAX_AGE``, which Django
refuses to combine with a pool) and forks, and a pool's connections must not
be shared across a fork.
"""

from __future__ import annotations

from django import db
from django.conf import settings

# Connections kept open while the portal is idle; the pool grows to
# AGENTOS_WEB_DB_POOL under load and shrinks back after psycopg's max_idle.
MIN_SIZE = 1
# How long a request waits for a free connection before failing.
TIMEOUT_S = 10.0


def pool_options() -> dict | None:
    """The ``OPTIONS["pool"]`` of the web process, or None when it has no pool."""
    size = settings.AGENTOS_WEB_DB_POOL
    if size <= 0:
        return None
    return {"min_size": min(MIN_SIZE, size), "max_size": size, "timeout": TIMEOUT_S}


def pool_web_connections() -> bool:
    """Give this process's PostgreSQL connections a pool; True when it has one."""
    options = pool_options()
    if options is None:
        return False
    pooled = False
    for alias in db.connections:
        config = db.connections.settings[alias]
        if config["ENGINE"] != "django.db.backends.postgresql" or config["CONN_MAX_AGE"]:
            continue
        # A connection opened before this point (start-up) is not the pool's.
        db.connections[alias].close()
        config.setdefault("OPTIONS", {})["pool"] = dict(options)
        pooled = True
    return pooled
