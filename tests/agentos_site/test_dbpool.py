"""The web process's PostgreSQL connections come from a pool; workers keep their own."""

from __future__ import annotations

import pytest
from django.db import connection

from agentos_site import dbpool


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_web_process_reuses_pooled_connections_across_requests() -> None:
    import agentos_site.asgi  # noqa: F401 - what daphne loads: it installs the pool

    if connection.vendor != "postgresql":
        assert dbpool.pool_web_connections() is False
        assert "pool" not in connection.settings_dict["OPTIONS"]
        return
    assert connection.settings_dict["CONN_MAX_AGE"] == 0
    assert connection.pool is not None
    _backend_pid()  # the pool's first connection, if it had none yet
    connection.close()
    opened = connection.pool.get_stats().get("connections_num", 0)
    pids = set()
    for _ in range(6):
        pids.add(_backend_pid())
        connection.close()  # the end of a request (CONN_MAX_AGE = 0)
    # Without the pool, each "request" started a new server process.
    assert connection.pool.get_stats().get("connections_num", 0) == opened
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
        alive = {row[0] for row in cursor.fetchall()}
    assert alive == pids, "a request's server process ended with the request"


def test_a_process_with_persistent_connections_gets_no_pool(settings) -> None:
    """A worker sets CONN_MAX_AGE (workflows.cluster), which Django refuses with a pool."""
    from django.db.utils import ConnectionHandler

    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "unused",
                "CONN_MAX_AGE": 300,
                "OPTIONS": {},
            }
        }
    )
    from unittest import mock

    with mock.patch.object(dbpool.db, "connections", handler):
        assert dbpool.pool_web_connections() is False
    assert "pool" not in handler.settings["default"]["OPTIONS"]


def test_the_pool_can_be_turned_off(settings) -> None:
    settings.AGENTOS_WEB_DB_POOL = 0
    assert dbpool.pool_options() is None
    settings.AGENTOS_WEB_DB_POOL = 4
    assert dbpool.pool_options() == {"min_size": 1, "max_size": 4, "timeout": dbpool.TIMEOUT_S}
