"""Seed a database with many runs, events, requests and steps, to measure pages at scale.

Rows are written with bulk inserts in batches (COPY on PostgreSQL, one
executemany per chunk on SQLite), one transaction per batch,
yet every run's events form a valid chain (`verify_events` passes): the run
ids are chosen before the insert so each event's hash can cover its run, and
each event is built by `workflows.events.build_event`, the appends' own code,
so it is signed with the audit key like any other.
The data is for benchmarks; never seed a database people use.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from agentos_site.roles import OPERATORS, REVIEWERS, ensure_roles
from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from workflows.events import GENESIS, SYSTEM_ACTOR, build_event
from workflows.models import Event, Run, Step, Workflow
from workflows.services import workflow_create
from workflows.states import RunStatus, StepStatus

PREFIX = "scale"
REQUESTERS, REVIEWER_USERS, WORKFLOWS = 20, 5, 8
LONG_RUNS, LONG_RUN_EVENTS = 3, 5000
SPAN = timedelta(days=90)
# A realistic mix: most runs are done; thousands wait for a person.
STATUS_WEIGHTS = {
    RunStatus.SUCCEEDED: 62,
    RunStatus.FAILED: 10,
    RunStatus.CANCELLED: 5,
    RunStatus.WAITING: 15,
    RunStatus.RUNNING: 4,
    RunStatus.QUEUED: 4,
}
FINAL_EVENT = {
    RunStatus.SUCCEEDED: "run.succeeded",
    RunStatus.FAILED: "run.failed",
    RunStatus.CANCELLED: "run.cancelled",
    RunStatus.WAITING: "run.paused",
    RunStatus.RUNNING: "step.started",
    RunStatus.QUEUED: "run.requeued",
}
MODES = ("assisted", "assisted", "assisted", "autonomous", "interactive")
# Finished steps (`steps_per_run` each): what the metrics and the dashboard add up.
STEP_ACTIONS = (
    "files.move",
    "files.list",
    "excel.pivot",
    "api.request",
    "hr.create_employee",
    "verify",
)
STEP_STATUSES = [StepStatus.SUCCEEDED] * 8 + [StepStatus.FAILED, StepStatus.TIMED_OUT]
STEP_SPAN = timedelta(days=30)


@dataclass
class SeedReport:
    runs: int
    events: int
    steps: int
    pending_requests: int
    decided_requests: int
    long_run_ids: list[int]


def _spec(index: int) -> dict[str, Any]:
    """Return a harmless three-node workflow: check, gate, check."""
    return {
        "slug": f"{PREFIX}-{index:02d}",
        "title": f"Scale workflow {index}",
        "mode": "assisted",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "plan": {
            "nodes": [
                {
                    "id": "check",
                    "action": "verify.value_equals",
                    "params": {"value": "{{ n }}", "expected": "{{ n }}"},
                },
                {
                    "id": "gate",
                    "type": "approval",
                    "title": "Go on with {{ n }}?",
                    "assign_to": REVIEWERS,
                },
                {
                    "id": "finish",
                    "action": "verify.value_equals",
                    "params": {"value": 1, "expected": 1},
                },
            ]
        },
    }


def _actors() -> tuple[list[Any], list[Any], dict[str, Group]]:
    groups = ensure_roles()
    User = get_user_model()
    requesters, reviewers = [], []
    for i in range(REQUESTERS):
        user, created = User.objects.get_or_create(username=f"{PREFIX}-requester-{i:02d}")
        if created:
            user.set_unusable_password()
            user.save()
            user.groups.add(groups[OPERATORS])
        requesters.append(user)
    for i in range(REVIEWER_USERS):
        user, created = User.objects.get_or_create(username=f"{PREFIX}-reviewer-{i:02d}")
        if created:
            user.set_unusable_password()
            user.save()
            user.groups.add(groups[REVIEWERS])
        reviewers.append(user)
    return requesters, reviewers, groups


def _workflows(actor: Any) -> list[Workflow]:
    found = []
    for i in range(WORKFLOWS):
        spec = _spec(i)
        workflow = Workflow.objects.filter(slug=spec["slug"]).first()
        found.append(workflow or workflow_create(raw_spec=spec, actor=actor))
    return found


def _event_counts(runs: int, events: int, rng: random.Random) -> list[int]:
    """Split `events` over `runs`: a few long runs, the rest near the mean."""
    long_runs = min(LONG_RUNS, runs) if events >= runs * 4 + LONG_RUNS * LONG_RUN_EVENTS else 0
    rest = events - long_runs * LONG_RUN_EVENTS
    normal = runs - long_runs
    base, extra = divmod(rest, normal) if normal else (0, 0)
    counts = [base + (1 if i < extra else 0) for i in range(normal)]
    rng.shuffle(counts)
    return [LONG_RUN_EVENTS] * long_runs + counts


def _event_types(status: str, count: int) -> list[str]:
    """Return a plausible story of `count` events ending in the status's event."""
    story = ["run.created"]
    while len(story) < count - 1:
        story += ["step.started", "step.succeeded"] if len(story) % 2 else ["run.running"]
    story = story[: max(count - 1, 1)]
    if count > 1:
        story.append(FINAL_EVENT[status])
    return story


def _converter(field: models.Field) -> Callable[[Any], Any]:
    """Return a fast Python -> database value conversion for one column."""
    if isinstance(field, models.JSONField):
        return lambda value: json.dumps(value, ensure_ascii=False)
    if isinstance(field, models.DateTimeField):
        if connection.vendor == "sqlite":
            # Django's own adaptation (aware -> naive in the connection's
            # zone -> str) without its per-call settings lookups.
            tz = connection.timezone

            def sqlite_datetime(value: datetime | None) -> str | None:
                if value is None:
                    return None
                return str(value.astimezone(tz).replace(tzinfo=None) if value.tzinfo else value)

            return sqlite_datetime
        return connection.ops.adapt_datetimefield_value
    integer = models.IntegerField  # AutoField and BigAutoField are integers too
    if isinstance(field, integer) or (
        isinstance(field, models.ForeignKey) and isinstance(field.target_field, integer)
    ):
        return lambda value: value  # an int (or None) is stored as it is
    if isinstance(field, (models.UUIDField, models.ForeignKey)) or field.primary_key:
        return lambda value: field.get_db_prep_save(value, connection)
    return lambda value: value


def _insert(model: type[models.Model], objs: list[models.Model], chunk: int = 2000) -> None:
    """Insert model instances with one executemany per chunk (no ORM per-row cost).

    Every column is written, so the instances must carry their primary keys
    or leave them None on a database that assigns them.
    """
    if not objs:
        return
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and getattr(objs[0], f.attname) is None)
    ]
    convert = [(f.attname, _converter(f)) for f in fields]
    json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
    marks = ", ".join(
        "%s" + (json_cast if isinstance(f, models.JSONField) else "") for f in fields
    )
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} "
        f"({', '.join(connection.ops.quote_name(f.column) for f in fields)}) "
        f"VALUES ({marks})"
    )
    rows = [[fn(getattr(obj, name)) for name, fn in convert] for obj in objs]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY streams the rows in one statement: several times faster
            # than executemany's INSERT per row (psycopg's raw cursor).
            copy_sql = sql.split(" VALUES ", 1)[0].replace("INSERT INTO", "COPY", 1)
            with cursor.cursor.copy(f"{copy_sql} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        for start in range(0, len(rows), chunk):
            cursor.executemany(sql, rows[start : start + chunk])


class Seeder:
    """Write runs, their event chains and their approval requests in batches."""

    def __init__(
        self,
        *,
        runs: int,
        events: int,
        steps_per_run: int = 0,
        batch: int = 1000,
        seed: int = 7,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if events < runs:
            raise ValueError("events: give at least one event per run")
        self.total_runs, self.total_events, self.batch = runs, events, batch
        self.steps_per_run = steps_per_run
        self.rng = random.Random(seed)
        # The steps draw from their own sequence: the runs, events and
        # requests are the same with or without them.
        self.step_rng = random.Random(seed + 4)
        self.progress = progress or (lambda _msg: None)

    def run(self) -> SeedReport:
        if connection.vendor == "sqlite":
            # A large page cache keeps the hash index's random inserts in memory.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA cache_size=-262144")
        requesters, reviewers, groups = _actors()
        workflows = _workflows(requesters[0])
        counts = _event_counts(self.total_runs, self.total_events, self.rng)
        first_id = (Run.objects.aggregate(m=Max("id"))["m"] or 0) + 1
        now = self.now = timezone.now()
        report = SeedReport(0, 0, 0, 0, 0, [])
        statuses = list(STATUS_WEIGHTS)
        weights = list(STATUS_WEIGHTS.values())
        for start in range(0, self.total_runs, self.batch):
            chunk = counts[start : start + self.batch]
            ids = range(first_id + start, first_id + start + len(chunk))
            # Older runs get smaller ids, as they would have.
            times = [now - SPAN * (1 - (start + i) / self.total_runs) for i in range(len(chunk))]
            chosen = [
                RunStatus.SUCCEEDED
                if n == LONG_RUN_EVENTS
                else self.rng.choices(statuses, weights)[0]
                for n in chunk
            ]
            self._write_batch(
                ids, chunk, chosen, times, requesters, reviewers, workflows, groups, report
            )
            if LONG_RUN_EVENTS in chunk:
                report.long_run_ids += [
                    i for i, n in zip(ids, chunk, strict=True) if n == LONG_RUN_EVENTS
                ]
            self.progress(f"{report.runs} runs, {report.events} events, {report.steps} steps")
        self._reset_sequences()
        # Fresh statistics let the planner walk the ordering indexes instead
        # of sorting (SQLite picked a multi-index OR and a sort without them).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return report

    def _write_batch(
        self,
        ids: range,
        counts: list[int],
        statuses: list[str],
        times: list[datetime],
        requesters: list[Any],
        reviewers: list[Any],
        workflows: list[Workflow],
        groups: dict[str, Group],
        report: SeedReport,
    ) -> None:
        rng = self.rng
        runs, events, requests = [], [], []
        for run_id, count, status, created in zip(ids, counts, statuses, times, strict=True):
            workflow = rng.choice(workflows)
            requester = rng.choice(requesters)
            correlation = uuid.UUID(int=rng.getrandbits(128), version=4)
            prev, at = GENESIS, created
            for seq, kind in enumerate(_event_types(status, count), start=1):
                at = at + timedelta(milliseconds=rng.randint(5, 900))
                data = {"node": "check", "attempt": 1} if kind.startswith("step.") else {}
                label = requester.username if kind == "run.created" else SYSTEM_ACTOR
                event = build_event(
                    run_id=run_id,
                    seq=seq,
                    prev_hash=prev,
                    type=kind,
                    actor_id=requester.pk if kind == "run.created" else None,
                    actor_label=label,
                    data=data,
                    at=at,
                    correlation_id=str(correlation),
                )
                events.append(event)
                prev = event.hash
            terminal = status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
            position = {RunStatus.SUCCEEDED: 3, RunStatus.WAITING: 1, RunStatus.QUEUED: 0}.get(
                status, rng.choice([0, 2])
            )
            nodes = workflow.plan["nodes"]
            runs.append(
                Run(
                    id=run_id,
                    workflow=workflow,
                    workflow_version=workflow.version,
                    plan=workflow.plan,
                    inputs_schema=workflow.inputs_schema,
                    mode=rng.choice(MODES),
                    status=status,
                    context={"n": run_id},
                    position=position,
                    current_node=nodes[position]["id"] if position < len(nodes) else "",
                    requester=requester,
                    error="value 1 does not equal expected 2"
                    if status == RunStatus.FAILED
                    else "",
                    # A running run is held by a (pretend) worker, not re-queued.
                    lease_owner="seed_scale" if status == RunStatus.RUNNING else "",
                    lease_expires_at=created + timedelta(days=3650)
                    if status == RunStatus.RUNNING
                    else None,
                    correlation_id=correlation,
                    last_seq=count,
                    last_hash=prev,
                    created_at=created,
                    updated_at=at,
                    started_at=created if position else None,
                    finished_at=at if terminal else None,
                )
            )
            if status == RunStatus.WAITING or (
                status == RunStatus.SUCCEEDED and rng.random() < 0.5
            ):
                requests.append(
                    self._request(run_id, workflow, status, at, reviewers, groups, report)
                )
        steps = self._steps(ids)
        with transaction.atomic():
            _insert(Run, runs)
            _insert(Event, events)
            _insert(ApprovalRequest, requests)
            _insert(Step, steps)
        report.runs += len(runs)
        report.events += len(events)
        report.steps += len(steps)

    def _steps(self, ids: range) -> list[Step]:
        """Return `steps_per_run` finished steps of each run in `ids`.

        Each run's steps finished at one moment of the last 30 days (like a
        portal in use; the last minutes' are what a scrape counts live,
        observability.rollup), with a random action, status and duration.
        """
        rng, out = self.step_rng, []
        for run_id in ids if self.steps_per_run else ():
            finished = self.now - timedelta(seconds=rng.uniform(0, STEP_SPAN.total_seconds()))
            for position in range(self.steps_per_run):
                duration = rng.expovariate(1 / 2000)
                node = f"n{position}"
                out.append(
                    Step(
                        run_id=run_id,
                        node_id=node,
                        node_path=node,
                        position=position,
                        action=rng.choice(STEP_ACTIONS),
                        status=rng.choice(STEP_STATUSES),
                        idempotency_key=f"{run_id}-{position}",
                        started_at=finished - timedelta(milliseconds=duration),
                        finished_at=finished,
                        duration_ms=duration,
                    )
                )
        return out

    def _request(
        self,
        run_id: int,
        workflow: Workflow,
        status: str,
        at: datetime,
        reviewers: list[Any],
        groups: dict[str, Group],
        report: SeedReport,
    ) -> ApprovalRequest:
        rng = self.rng
        pending = status == RunStatus.WAITING
        delegated = pending and rng.random() < 0.1
        due = at + timedelta(hours=rng.choice([1, 24, 72])) if rng.random() < 0.3 else None
        if pending:
            report.pending_requests += 1
        else:
            report.decided_requests += 1
        return ApprovalRequest(
            run_id=run_id,
            node_id="gate",
            position=1,
            kind=RequestKind.APPROVAL,
            title=f"Go on with {run_id}?",
            assigned_group=groups[REVIEWERS],
            assigned_user=rng.choice(reviewers) if delegated else None,
            guards=[
                {"node": "finish", "position": 2, "action": "verify.value_equals", "risk": "low"}
            ],
            due_at=due,
            created_at=at,
            status=RequestStatus.PENDING if pending else RequestStatus.APPROVED,
            decided_by=None if pending else rng.choice(reviewers),
            decided_at=None if pending else at + timedelta(minutes=rng.randint(1, 600)),
        )

    @staticmethod
    def _reset_sequences() -> None:
        """Move PostgreSQL's id sequences past the ids we chose (no-op on SQLite)."""
        statements = connection.ops.sequence_reset_sql(no_style(), [Run])
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
