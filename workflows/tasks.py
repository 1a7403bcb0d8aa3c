"""django-q2 entry points: ids in, the engine does the work."""

from __future__ import annotations


def advance_run(run_id: int, correlation_id: str | None = None) -> None:
    """Advance one run until it pauses, ends or uses its time budget.

    `correlation_id`, when the task carries it, is for the worker's log
    context only (observability.signals); the engine reads the run itself.
    """
    from workflows.engine import run_advance

    run_advance(run_id=run_id)


def requeue_stale_runs() -> int:
    """Re-queue runs whose worker died or whose task was lost (scheduled)."""
    from workflows.engine import runs_requeue_stale

    return runs_requeue_stale()


REQUEUE_SCHEDULE = "agentos: re-queue stale runs"
CHECKPOINT_SCHEDULE = "agentos: checkpoint the audit log"


def write_audit_checkpoint() -> int | None:
    """Append a signed checkpoint of the chain heads that moved (scheduled)."""
    from workflows.checkpoints import checkpoint_write

    return checkpoint_write()


def ensure_schedules(**_: object) -> None:
    """Create or repair the periodic schedules the engine relies on."""
    from django.conf import settings
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=REQUEUE_SCHEDULE,
        defaults={
            "func": "workflows.tasks.requeue_stale_runs",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    Schedule.objects.update_or_create(
        name=CHECKPOINT_SCHEDULE,
        defaults={
            "func": "workflows.tasks.write_audit_checkpoint",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.AGENTOS_AUDIT_CHECKPOINT_MINUTES,
            "repeats": -1,
        },
    )


def start_scheduled_run(schedule_id: int) -> int | None:
    """Start one run of a workflow schedule (django-q2 calls this on time)."""
    from workflows.schedules import scheduled_run_start

    run = scheduled_run_start(schedule_id)
    return run.pk if run is not None else None
