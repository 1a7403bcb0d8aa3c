"""Ride out a database restart inside a long-lived worker task.

A qcluster worker keeps its database connection for the whole task, so a
PostgreSQL restart (or a failover) leaves it holding a dead socket. The engine
calls its transactions through `retrying`: on a connection error it drops the
connection and tries again until the database answers or
AGENTOS_DB_RETRY_S runs out. Retrying a whole transaction is safe here because
each one re-reads and re-checks what it depends on (the lease, the step's
status) before writing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean "the connection is gone", not "the query is wrong". SQLite
# raises OperationalError for a busy database too; a retry is right for that.
CONNECTION_ERRORS = (OperationalError, InterfaceError)


def drop_connection() -> None:
    """Forget this thread's connection; the next query opens a new one."""
    try:
        connection.close()
    except Exception:  # the socket is dead already; nothing to tidy up
        connection.connection = None


def retrying(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call `fn` (one whole transaction), retrying while the database is away."""
    deadline = time.monotonic() + settings.AGENTOS_DB_RETRY_S
    delay = 0.1
    while True:
        try:
            return fn(*args, **kwargs)
        except CONNECTION_ERRORS as exc:
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
            logger.warning(
                "database unavailable (%s); retrying in %.1fs",
                str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                delay,
            )
            drop_connection()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def lease_heartbeat(renew: Callable[[], bool], lease_s: float) -> Callable[[], bool]:
    """Wrap a lease renewal so a database outage does not kill the action at once.

    While the database is away the lease cannot be renewed, but nobody else
    can take it either until it expires: keep the action running until the
    last renewal's lease would have run out, then give up (the step's result
    is then refused by the lease check when the database is back).
    """
    renewed = time.monotonic()

    def beat() -> bool:
        nonlocal renewed
        try:
            held = renew()
        except CONNECTION_ERRORS as exc:
            logger.warning("lease renewal failed: %s", str(exc).strip()[:200])
            drop_connection()
            return time.monotonic() - renewed < lease_s * 0.8
        if held:
            renewed = time.monotonic()
        return held

    return beat


def quietly(fn: Callable[..., T], *args: object, default: T, **kwargs: object) -> T:
    """Call `fn` once; on a connection error drop the connection, return `default`."""
    try:
        return fn(*args, **kwargs)
    except CONNECTION_ERRORS as exc:
        logger.warning("database unavailable: %s", str(exc).strip()[:200])
        if not connection.in_atomic_block:
            drop_connection()
        return default
