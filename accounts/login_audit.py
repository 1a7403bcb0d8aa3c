"""One audit event per burst of failed logins, not one per attempt.

Each failure used to append an event to the system chain under its lock,
so anyone could flood the audit log (and slow every other system event)
by posting wrong passwords. Now, per address and window
(AGENTOS_LOGIN_AUDIT_WINDOW_S):

- the first failure is an ``auth.login_failed`` event (user, ip, path);
- later failures are counted in ``LoginFailureWindow`` (one row per
  address, updated in place);
- a lockout by django-axes is one ``auth.login_locked_out`` event per
  window, however many refused attempts follow;
- the window's count (and the user names tried, at most MAX_USERS) is one
  ``auth.login_failures`` event when the window closes: at the address's
  next failure after it, or its next successful login.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import LoginFailureWindow
from workflows.events import system_event_append

MAX_USERS = 20


def _window() -> timedelta:
    return timedelta(seconds=settings.AGENTOS_LOGIN_AUDIT_WINDOW_S)


def _summary(row: LoginFailureWindow) -> dict[str, Any]:
    return {
        "ip": row.address,
        "failures": row.failures,
        "users": row.users,
        "since": row.started_at.isoformat(),
        "last": row.last_at.isoformat(),
    }


def _close(row: LoginFailureWindow) -> None:
    """Write the closing summary of a window that saw more than its first failure."""
    if row.failures > 1:
        system_event_append(type="auth.login_failures", data=_summary(row))


def login_failed(*, address: str, user: str, path: str) -> None:
    """Count a failed login; write an event only when it opens a window."""
    now = timezone.now()
    with transaction.atomic():
        row, created = LoginFailureWindow.objects.select_for_update().get_or_create(
            address=address,
            defaults={"started_at": now, "last_at": now, "failures": 1, "users": [user]},
        )
        if not created and now - row.started_at >= _window():
            _close(row)
            row.started_at, row.failures, row.users, row.locked_logged = now, 0, [], False
            created = True
        if created:
            row.failures, row.last_at, row.users = 1, now, [user]
            row.save()
            system_event_append(
                type="auth.login_failed", data={"user": user, "ip": address, "path": path}
            )
            return
        row.failures += 1
        row.last_at = now
        if user not in row.users and len(row.users) < MAX_USERS:
            row.users = [*row.users, user]
        row.save(update_fields=["failures", "last_at", "users"])


def locked_out(*, address: str, user: str, failures: int | None) -> None:
    """Record a lockout once per window, however many refused attempts follow."""
    now = timezone.now()
    with transaction.atomic():
        row, _ = LoginFailureWindow.objects.select_for_update().get_or_create(
            address=address,
            defaults={"started_at": now, "last_at": now, "failures": 0, "users": [user]},
        )
        if row.locked_logged:
            return
        row.locked_logged = True
        row.save(update_fields=["locked_logged"])
        system_event_append(
            type="auth.login_locked_out",
            data={
                "user": user,
                "ip": address,
                "failures": failures,
                "cooloff_s": int(settings.AXES_COOLOFF_TIME.total_seconds()),
            },
        )


def logged_in(*, address: str) -> None:
    """Close the address's window at a successful login, summarising it."""
    with transaction.atomic():
        row = LoginFailureWindow.objects.select_for_update().filter(address=address).first()
        if row is not None:
            _close(row)
            row.delete()
