"""Runs on a schedule: cron or interval, kept with django-q2's Schedule."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from workflows.events import system_event_append
from workflows.exceptions import ScheduleRefused
from workflows.models import Run, WorkflowSchedule
from workflows.plans import PlanInvalid
from workflows.services import _context_errors, run_create
from workflows.states import mode_refusal

Q_FUNC = "workflows.tasks.start_scheduled_run"


def schedule_problems(schedule: WorkflowSchedule) -> dict[str, str]:
    """Return field -> message for a schedule that cannot run as configured."""
    from croniter import croniter

    problems: dict[str, str] = {}
    if schedule.kind == WorkflowSchedule.Kind.CRON:
        if not schedule.cron or not croniter.is_valid(schedule.cron):
            problems["cron"] = "not a valid cron expression (minute hour day month weekday)"
    elif not schedule.minutes or schedule.minutes < 1:
        problems["minutes"] = "an interval of at least 1 minute is required"
    if schedule.mode and schedule.workflow_id:
        refusal = mode_refusal(schedule.mode, schedule.workflow.mode)
        if refusal:
            problems["mode"] = refusal
    if not isinstance(schedule.context, dict):
        problems["context"] = "must be an object"
    elif schedule.workflow_id:
        for error in _context_errors(schedule.workflow.inputs_schema, schedule.context):
            problems.setdefault(error.field, error.message)
    return problems


def schedule_save(*, schedule: WorkflowSchedule, actor: Any) -> WorkflowSchedule:
    """Save a schedule and its django-q2 Schedule together, with an audit event.

    The person who saves the schedule becomes its owner, the requester of
    every run it starts (four-eyes is checked against them): nobody names
    someone else, or nobody, as the requester of runs they set up. They must
    hold the right to start runs themselves.
    """
    from django_q.models import Schedule

    from agentos_site import policy

    if not policy.allows(actor, policy.RUNS_START):
        raise ScheduleRefused(
            "only a person who may start runs can save a schedule: "
            "its runs are started in their name"
        )
    schedule.owner = actor
    created = schedule.pk is None
    with transaction.atomic():
        schedule.save()
        q = (
            Schedule.objects.filter(pk=schedule.q_schedule_id).first()
            if schedule.q_schedule_id
            else None
        )
        if not schedule.enabled:
            if q is not None:
                q.delete()
            schedule.q_schedule_id = None
        else:
            q = q or Schedule(name=f"agentos workflow schedule {schedule.pk}")
            q.func, q.args, q.repeats = Q_FUNC, repr((schedule.pk,)), -1
            if schedule.kind == WorkflowSchedule.Kind.CRON:
                q.schedule_type, q.cron, q.minutes = Schedule.CRON, schedule.cron, None
                q.next_run = None
            else:
                q.schedule_type, q.cron, q.minutes = Schedule.MINUTES, None, schedule.minutes
                q.next_run = timezone.now()
            q.save()
            schedule.q_schedule_id = q.pk
        schedule.save(update_fields=["q_schedule_id"])
        system_event_append(
            type="schedule.created" if created else "schedule.updated",
            actor=actor,
            data=_schedule_data(schedule),
        )
    return schedule


def schedule_delete(*, schedule: WorkflowSchedule, actor: Any) -> None:
    """Delete a schedule and its django-q2 Schedule; runs it started keep existing."""
    from django_q.models import Schedule

    with transaction.atomic():
        if schedule.q_schedule_id:
            Schedule.objects.filter(pk=schedule.q_schedule_id).delete()
        data = _schedule_data(schedule)
        schedule.delete()
        system_event_append(type="schedule.deleted", actor=actor, data=data)


def _schedule_data(schedule: WorkflowSchedule) -> dict[str, Any]:
    return {
        "schedule": schedule.name,
        "workflow": schedule.workflow.slug,
        "kind": schedule.kind,
        "cron": schedule.cron,
        "minutes": schedule.minutes,
        "enabled": schedule.enabled,
        "context": schedule.context,
        "mode": schedule.mode or None,
        "requester": schedule.owner.get_username() if schedule.owner_id else None,
    }


def scheduled_run_start(schedule_id: int) -> Run | None:
    """Start one run of a schedule, recorded like any other run.

    Its requester is the schedule's owner. A schedule whose owner is gone,
    deactivated or no longer allowed to start runs (or that no longer fits
    its workflow, e.g. a mode the workflow now forbids) starts nothing: it
    is disabled, with one event saying why, until someone saves it again.
    """
    from agentos_site import policy

    schedule = (
        WorkflowSchedule.objects.select_related("workflow", "owner")
        .filter(pk=schedule_id, enabled=True)
        .first()
    )
    if schedule is None:
        return None
    if not policy.allows(schedule.owner, policy.RUNS_START):
        _schedule_disable(schedule, "its owner is missing or may no longer start runs")
        return None
    try:
        return run_create(
            workflow=schedule.workflow,
            context=schedule.context,
            mode=schedule.mode or None,
            requester=schedule.owner,
            schedule=schedule,
        )
    except PlanInvalid as exc:
        _schedule_disable(schedule, str(exc))
        return None


def _schedule_disable(schedule: WorkflowSchedule, reason: str) -> None:
    from django_q.models import Schedule

    with transaction.atomic():
        if schedule.q_schedule_id:
            Schedule.objects.filter(pk=schedule.q_schedule_id).delete()
        WorkflowSchedule.objects.filter(pk=schedule.pk).update(enabled=False, q_schedule_id=None)
        schedule.enabled, schedule.q_schedule_id = False, None
        system_event_append(
            type="schedule.disabled",
            actor=None,
            data={**_schedule_data(schedule), "reason": reason[:500]},
        )
