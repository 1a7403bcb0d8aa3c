"""Leases: which worker may advance a run, without row locks.

A lease is taken on the locked row in the run's first transaction
(``lease_free_for``; SELECT ... FOR UPDATE on PostgreSQL, and SQLite's
IMMEDIATE transactions serialise every writer), and renewed and released
with conditional UPDATEs that must touch exactly one row.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from workflows.models import Run
from workflows.states import ACTIVE, RunStatus

_identity: tuple[int, str] | None = None


def worker_id() -> str:
    """Return this process's worker identity (new after a fork)."""
    global _identity
    if _identity is None or _identity[0] != os.getpid():
        _identity = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _identity[1]


def _expiry():  # type: ignore[no-untyped-def]
    return timezone.now() + timedelta(seconds=settings.AGENTOS_LEASE_SECONDS)


def lease_free_for(run: Run, owner: str) -> bool:
    """On a freshly locked row: may `owner` take the lease?

    Only an active run's, and only when it is free, expired or already
    ours; the engine takes it in the run's first transaction (with its
    first decision, in the same commit).
    """
    if run.status not in ACTIVE:
        return False
    expired = run.lease_expires_at is not None and run.lease_expires_at < timezone.now()
    return run.lease_owner in ("", owner) or expired


def lease_renew(run_id: int, owner: str) -> bool:
    """Extend our lease; False when another worker took it or the run stopped running."""
    return (
        Run.objects.filter(
            pk=run_id,
            lease_owner=owner,
            status=RunStatus.RUNNING,
        ).update(lease_expires_at=_expiry())
        == 1
    )


def lease_release(run_id: int, owner: str) -> None:
    """Give the lease back (a no-op when it is no longer ours)."""
    Run.objects.filter(pk=run_id, lease_owner=owner).update(lease_owner="", lease_expires_at=None)


def lease_holds(run: Run, owner: str) -> bool:
    """Check, on a freshly locked row, that the lease is still ours.

    The owner alone decides: nobody else can take a lease without writing
    their name into it, and the row is locked. A lease that expired while
    this worker was slow (a loaded machine, a long pause) but that nobody
    took over is still ours; the commit extends it again.
    """
    return run.lease_owner == owner


def lease_extend_on(run: Run) -> None:
    """Push the lease expiry of a locked run we hold (saved with the run)."""
    run.lease_expires_at = _expiry()


def stale_runs(*, queued_grace_s: float | None = None) -> list[int]:
    """Return runs a worker should pick up: expired leases, or queued and forgotten.

    "Forgotten" also covers a running run whose worker gave its lease back
    without finishing (it lost its task to a database or broker outage).
    """
    if queued_grace_s is None:
        queued_grace_s = settings.AGENTOS_REQUEUE_AFTER_S
    now = timezone.now()
    expired = Q(status__in=sorted(ACTIVE), lease_expires_at__lt=now)
    forgotten = Q(
        status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
        lease_owner="",
        updated_at__lt=now - timedelta(seconds=queued_grace_s),
    )
    return list(Run.objects.filter(expired | forgotten).values_list("pk", flat=True)[:1000])
