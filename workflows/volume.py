"""Operators at volume: start many runs at once, and runs on a schedule."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from agentos_common import limits
from workflows import actions
from workflows.events import system_event_append
from workflows.exceptions import BatchInvalid, ScheduleRefused
from workflows.models import Run, RunBatch, Workflow, WorkflowSchedule
from workflows.plans import PlanInvalid, validate_plan
from workflows.services import _context_errors, run_create
from workflows.states import RunMode, mode_refusal

MAX_BATCH = 100
MAX_CSV_BYTES = 1024 * 1024
Q_FUNC = "workflows.tasks.start_scheduled_run"


@dataclass(frozen=True)
class RowError:
    """One problem of a batch: row (1-based; 0 is the CSV header), column, message."""

    row: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


def _coerce(value: str, schema: dict) -> Any:
    """Turn a CSV cell into the type its input declares; leave it when it will not fit."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
        if kind in ("array", "object"):
            return limits.loads(value)
    except limits.TooDeep:
        raise
    except ValueError:
        pass
    return value


def rows_from_csv(text: str, inputs_schema: dict) -> list[dict]:
    """Parse a CSV with a header of input names; empty cells are left out."""
    if len(text.encode()) > MAX_CSV_BYTES:
        raise BatchInvalid([RowError(0, "file", f"larger than {MAX_CSV_BYTES // 1024} KiB")])
    reader = csv.DictReader(io.StringIO(text))
    properties = inputs_schema.get("properties", {})
    header = reader.fieldnames or []
    errors = [
        RowError(0, name or "(empty)", "not an input of this workflow")
        for name in header
        if name not in properties
    ]
    if not header:
        errors.append(RowError(0, "file", "the first line must name the inputs"))
    if errors:
        raise BatchInvalid(errors)
    rows = []
    for record in reader:
        if None in record:
            rows.append({"__extra__": record[None]})
            continue
        row = {}
        for key, value in record.items():
            if value in ("", None):
                continue
            try:
                row[key] = _coerce(value, properties.get(key, {}))
            except limits.TooDeep as exc:
                errors.append(RowError(len(rows) + 1, key, str(exc)))
        rows.append(row)
    if errors:
        raise BatchInvalid(errors)
    return rows


def batch_validate(workflow: Workflow, rows: Any) -> list[RowError]:
    """Return every problem of every row at once; empty means all may start."""
    if not isinstance(rows, list) or not rows:
        return [RowError(0, "rows", "give a non-empty list of contexts")]
    if len(rows) > MAX_BATCH:
        return [RowError(0, "rows", f"at most {MAX_BATCH} runs in one batch")]
    errors = [
        RowError(0, f"plan.{e.node}.{e.field}", e.message)
        for e in validate_plan(
            workflow.plan,
            registry=actions.registry(),
            policy=actions.policy(),
            inputs_schema=workflow.inputs_schema,
            stored=True,
        )
    ]
    properties = workflow.inputs_schema.get("properties", {})
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            errors.append(RowError(number, "", "a row must be an object of inputs"))
            continue
        if "__extra__" in row:
            errors.append(RowError(number, "", "more cells than the header names"))
            continue
        for key in row:
            if key not in properties:
                errors.append(RowError(number, key, "not an input of this workflow"))
        for error in _context_errors(workflow.inputs_schema, row):
            column = error.field.removeprefix("context").lstrip(".") or "(row)"
            errors.append(RowError(number, column, error.message))
    return errors


def runs_start_batch(
    *, workflow: Workflow, rows: Any, actor: Any, source: str = "json", mode: str | None = None
) -> RunBatch:
    """Validate every row, then start all the runs in one transaction, or none."""
    if mode is not None and mode not in RunMode.values:
        raise BatchInvalid([RowError(0, "mode", "must be autonomous, assisted or interactive")])
    refusal = mode_refusal(mode, workflow.mode)
    if refusal:
        raise BatchInvalid([RowError(0, "mode", refusal)])
    errors = batch_validate(workflow, rows)
    if errors:
        raise BatchInvalid(errors)
    with transaction.atomic():
        batch = RunBatch.objects.create(
            workflow=workflow, size=len(rows), source=source, created_by=actor
        )
        runs = [
            run_create(workflow=workflow, context=row, mode=mode, requester=actor, batch=batch)
            for row in rows
        ]
        system_event_append(
            type="batch.started",
            actor=actor,
            data={
                "batch": batch.pk,
                "workflow": workflow.slug,
                "size": len(runs),
                "runs": [run.pk for run in runs],
                "source": source,
            },
        )
    return batch


# --- schedules ---------------------------------------------------------------


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
