"""Workflows, runs, steps and the append-only event log."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models, router
from django.db.models import Q

from workflows import sql
from workflows.exceptions import EventImmutable
from workflows.resume import ResumeGrant
from workflows.states import TERMINAL, UNFINISHED, RunMode, RunStatus, StepStatus


class Workflow(models.Model):
    """A stored, versioned workflow spec: inputs schema, mode and plan."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    spec = models.JSONField(help_text="The validated spec: mode, inputs, plan.")
    source = models.TextField(blank=True, help_text="The spec as authored (YAML or JSON).")
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("start_run", "Can start a run of a workflow"),
            ("set_self_approval", "Can let a workflow's requesters decide their own runs"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def mode(self) -> str:
        return self.spec.get("mode", RunMode.ASSISTED)

    @property
    def inputs_schema(self) -> dict:
        return self.spec.get("inputs") or {"type": "object", "properties": {}}

    @property
    def plan(self) -> dict:
        return self.spec.get("plan") or {"nodes": []}


class WorkflowVersion(models.Model):
    """One saved spec of a workflow; a run records the version it froze."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    spec = models.JSONField()
    source = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "version"], name="workflow_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.slug} v{self.version}"


class Run(models.Model):
    """One execution of a frozen plan; its status and context project its events."""

    workflow = models.ForeignKey(
        Workflow, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    workflow_version = models.PositiveIntegerField(null=True, blank=True)
    plan = models.JSONField(help_text="The plan frozen when the run was created.")
    inputs_schema = models.JSONField(default=dict, blank=True)
    mode = models.CharField(max_length=16, choices=RunMode.choices, default=RunMode.ASSISTED)
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    context = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Index of the current node.")
    current_node = models.CharField(max_length=100, blank=True)
    # What a person decided about the current node that the engine honours
    # once (approved, retry, resume with the action's state and the values
    # given, the plan's review): a workflows.resume.ResumeGrant as JSON, {}
    # when nothing is pending. Read and written through `grant`/`set_grant`.
    resume_grant = models.JSONField(default=dict, blank=True)
    # The graph's own state: {"visits": {node id: times entered}}.
    graph = models.JSONField(default=dict, blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requested_runs",
    )
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="forks"
    )
    forked_at_seq = models.PositiveIntegerField(null=True, blank=True)
    # A child run (a `type: workflow` node): the node of `parent` that started
    # it. Empty for a fork (which has `forked_at_seq`) and a top-level run.
    parent_node = models.CharField(max_length=100, blank=True, default="")
    # An integration's Idempotency-Key: the same key of the same requester
    # always names the same run (a unique constraint, so also under races).
    idempotency_key = models.CharField(max_length=200, blank=True)
    # SHA-256 of what the request with that key asked for: a key reused for
    # another request is refused, not answered with this run.
    request_digest = models.CharField(max_length=64, blank=True, default="")
    batch = models.ForeignKey(
        "RunBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    schedule = models.ForeignKey(
        "WorkflowSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    correlation_id = models.UUIDField(default=uuid.uuid4, editable=False)
    last_seq = models.PositiveIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("cancel_run", "Can cancel a run"),
            ("fork_run", "Can fork a run"),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="run_status_lease"),
            models.Index(fields=["workflow", "-created_at"], name="run_workflow_created"),
            # Every list of runs is newest first; each filter has its own
            # index in that order, so a page never sorts or counts the table.
            models.Index(fields=["-created_at", "-id"], name="run_created_id"),
            models.Index(fields=["status", "-created_at", "-id"], name="run_status_created"),
            models.Index(fields=["mode", "-created_at", "-id"], name="run_mode_created"),
            models.Index(fields=["requester", "-created_at"], name="run_requester_created"),
            models.Index(fields=["current_node", "-created_at"], name="run_node_created"),
            # The metrics: ended runs are counted from a rollup plus those that
            # ended since its mark (observability.rollup), and the runs that
            # hold a lease, by holder, from this partial index alone.
            models.Index(fields=["finished_at"], name="run_finished"),
            models.Index(
                fields=["lease_owner", "status"],
                name="run_leased_owner",
                condition=Q(lease_expires_at__isnull=False),
            ),
            # The unfinished runs alone (~a quarter at 100,000 runs), counted
            # by status at each scrape from this small index without the
            # table on PostgreSQL. (SQLite matches a partial index only
            # against literal values, and Django binds them: it counts from
            # the status index, as covering, since every index holds the rowid.)
            models.Index(
                fields=["status"],
                name="run_unfinished_status",
                condition=Q(status__in=sorted(UNFINISHED)),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=sorted(TERMINAL), finished_at__isnull=False)
                | (~Q(status__in=sorted(TERMINAL)) & Q(finished_at__isnull=True)),
                name="run_finished_iff_terminal",
            ),
            models.UniqueConstraint(
                fields=["requester", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="run_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        name = self.workflow.slug if self.workflow_id else "plan"
        return f"Run {self.pk} ({name})"

    # What the engine and services change; the frozen plan is never rewritten.
    STATE_FIELDS = (
        "status",
        "context",
        "position",
        "current_node",
        "resume_grant",
        "graph",
        "lease_owner",
        "lease_expires_at",
        "error",
        "started_at",
        "finished_at",
        "last_seq",
        "last_hash",
        "updated_at",
    )

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save the run, after the events the engine staged on it (`events.event_stage`)."""
        if self.__dict__.get("_staged_events"):
            from workflows.events import flush_staged

            flush_staged(self)
        super().save(*args, **kwargs)

    @property
    def grant(self) -> ResumeGrant:
        """Return what a person decided that the run's next move honours."""
        return ResumeGrant.from_json(self.resume_grant)

    def set_grant(self, grant: ResumeGrant) -> None:
        self.resume_grant = grant.to_json()

    def save_state(self) -> None:
        """Save the projection of the run's events (status, context, position...).

        Without receivers of the run's saves, as a statement written once
        (`workflows.sql`): the engine saves its run at every step.
        """
        alias = self._state.db or router.db_for_write(Run)
        if self._state.adding or not sql.usable(Run, alias):
            self.save(update_fields=self.STATE_FIELDS)
            return
        from workflows.events import flush_staged, staged_take, staged_written

        if not sql.usable(Event, alias):
            flush_staged(self)
            sql.save_fields(self, self.STATE_FIELDS, using=alias)
            return
        # The staged events and the run's row: one round trip on PostgreSQL.
        staged = staged_take(self)
        sql.save_fields(self, self.STATE_FIELDS, using=alias, inserting=staged)
        staged_written(self, staged)

    @property
    def nodes(self) -> list[dict]:
        return list(self.plan.get("nodes", []))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


class RunBatch(models.Model):
    """Runs of one workflow started together from a CSV file or a JSON list."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="batches")
    size = models.PositiveIntegerField()
    source = models.CharField(max_length=16, help_text="csv or json")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "run batches"

    def __str__(self) -> str:
        return f"Batch {self.pk}: {self.size} runs of {self.workflow.slug}"


class WorkflowSchedule(models.Model):
    """Start a workflow on a cron expression or every N minutes (django-q2)."""

    class Kind(models.TextChoices):
        CRON = "cron", "Cron expression"
        INTERVAL = "interval", "Every N minutes"

    name = models.CharField(max_length=100, unique=True)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="schedules")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INTERVAL)
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. 0 7 * * 1-5")
    minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Interval in minutes.")
    context = models.JSONField(
        default=dict, blank=True, help_text="The starting context of every run."
    )
    mode = models.CharField(max_length=16, choices=RunMode.choices, blank=True)
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Recorded as the requester of every scheduled run.",
    )
    q_schedule_id = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="cron") & ~Q(cron=""))
                | (Q(kind="interval") & Q(minutes__gte=1)),
                name="schedule_has_its_timing",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    """One attempt at one action node."""

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="steps")
    node_id = models.CharField(max_length=100)
    # Where the node sits in the plan (`setup/1/badge`); the id at the top.
    node_path = models.CharField(max_length=300, blank=True, default="")
    position = models.PositiveIntegerField()
    # Which entry into the node this is: a loop enters a node again.
    visit = models.PositiveIntegerField(default=1)
    attempt = models.PositiveIntegerField(default=1)
    action = models.CharField(max_length=100)
    params = models.JSONField(default=dict, help_text="Resolved parameters (no secrets).")
    status = models.CharField(
        max_length=16, choices=StepStatus.choices, default=StepStatus.RUNNING
    )
    output = models.JSONField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=100)
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        # The metrics add up steps by the time they finished
        # (observability.rollup).
        indexes = [
            models.Index(fields=["finished_at"], name="step_finished"),
            # The dashboard's failures by action over the last day: a range
            # of this index per failed status, read without the table. (Not a
            # partial index: SQLite matches one only against literal values,
            # and Django binds them as parameters.)
            models.Index(fields=["status", "finished_at", "action"], name="step_status_finished"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "node_path", "position", "visit", "attempt"],
                name="step_attempt_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[StepStatus.RUNNING, StepStatus.UNKNOWN])
                | Q(finished_at__isnull=False),
                name="step_finished_when_final",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} #{self.attempt} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A step at the top of the plan is where its id says.
        self.node_path = self.node_path or self.node_id
        super().save(*args, **kwargs)


class EventQuerySet(models.QuerySet):
    """Events are append-only: bulk changes are refused.

    It is also the base manager's queryset (`Meta.base_manager_name`), so
    `Event._base_manager` refuses too. The one change allowed is the actor
    foreign key becoming NULL when a user is deleted (SET_NULL): the hash
    covers the denormalised `actor_label`, not the key.
    """

    def update(self, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.keys() == {"actor"} and kwargs["actor"] is None:
            return super().update(**kwargs)
        raise EventImmutable("events are append-only; they cannot be updated")

    def _update(self, values):  # type: ignore[no-untyped-def]
        if values and all(f.name == "actor" and v is None for f, _model, v in values):
            return super()._update(values)
        raise EventImmutable("events are append-only; they cannot be updated")

    def bulk_update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise EventImmutable("events are append-only; they cannot be updated")

    def bulk_create(self, objs, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("update_conflicts"):
            raise EventImmutable("events are append-only; an insert may not update a row")
        return super().bulk_create(objs, *args, **kwargs)

    def delete(self):  # type: ignore[no-untyped-def]
        raise EventImmutable("events are append-only; they cannot be deleted")

    _raw_delete = delete


class Event(models.Model):
    """One entry of a hash-chained, append-only log.

    Events of a run chain through the run's `last_hash`; events outside any
    run (workflow edits, logins, tokens) form the system chain.
    """

    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150)
    data = models.JSONField(default=dict)
    at = models.DateTimeField()
    correlation_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # Which audit key signed `hash` (workflows/audit_keys.py); empty for the
    # plain SHA-256 of events written before the log was keyed.
    key_id = models.CharField(max_length=16, blank=True, default="", db_default="")

    objects = EventQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        ordering = ["id"]
        permissions = [("export_event", "Can export the audit log")]
        # The operations dashboard reads the last day's run events by type and
        # time (runs that reached each status per hour), from the index alone.
        indexes = [models.Index(fields=["type", "at", "run"], name="event_type_at_run")]
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="event_run_seq_unique"),
            models.UniqueConstraint(
                fields=["seq"], condition=Q(run__isnull=True), name="event_system_seq_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self._state.adding:
            raise EventImmutable("events are append-only; they cannot be updated")
        # Never an UPDATE, even for a new instance given an existing id.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def _do_update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Every path that saves an existing row (save_base, loaddata) ends here.
        raise EventImmutable("events are append-only; they cannot be updated")

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise EventImmutable("events are append-only; they cannot be deleted")


class SystemChain(models.Model):
    """The head of the system event chain; its row is what an append locks."""

    last_seq = models.PositiveIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"system chain at {self.last_seq}"
