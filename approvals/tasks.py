"""django-q2 entry points for approvals: ids in, services do the work."""

from __future__ import annotations

EXPIRE_SCHEDULE = "agentos: apply on_timeout to overdue requests"


def expire_requests() -> int:
    """Apply `on_timeout` to overdue requests (scheduled every minute)."""
    from approvals.services import requests_expire

    return requests_expire()


def webhook_deliver(hook_id: int, payload: dict) -> int:
    """Deliver one signed webhook call."""
    from approvals.notifications import webhook_deliver as deliver

    return deliver(hook_id, payload)


def ensure_schedules(**_: object) -> None:
    """Create or repair the schedule that expires overdue requests."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=EXPIRE_SCHEDULE,
        defaults={
            "func": "approvals.tasks.expire_requests",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
