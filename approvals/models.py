"""Requests for a person's decision: gates, missing values, unknown outcomes."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from workflows.models import Run, Step, Workflow


class RequestKind(models.TextChoices):
    APPROVAL = "approval", "Approval"
    INPUT = "input", "Input"
    UNKNOWN_OUTCOME = "unknown_outcome", "Unknown outcome"


class RequestPurpose(models.TextChoices):
    """What the paused run does with the decision (workflows.services.run_continue)."""

    APPROVAL_NODE = "approval_node", "Approval node"
    INPUT_NODE = "input_node", "Input node"
    MODE_GATE = "mode_gate", "The mode's review of a step"
    GATE_AGAIN = "gate_again", "A gate asked again"
    PLAN_REVIEW = "plan_review", "Review of the plan"
    MISSING = "missing", "A missing value"
    ACTION_INPUT = "action_input", "An action's question"
    UNKNOWN_OUTCOME = "unknown_outcome", "An unknown outcome"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class Resolution(models.TextChoices):
    """What a reviewer chose for an unknown outcome."""

    RETRY = "retry", "Run the step again"
    MARK_DONE = "mark_done", "It happened: mark the step done"
    FAIL = "fail", "Fail the run"


class OnTimeout(models.TextChoices):
    """What happens to a request nobody decided by its due time."""

    REJECT = "reject", "Reject"
    APPROVE = "approve", "Approve with the defaults"
    ESCALATE = "escalate", "Escalate to another group"


class ApprovalRequest(models.Model):
    """A paused run waiting for a person: approve, supply values, or reject."""

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="approval_requests")
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.PROTECT, related_name="approval_requests"
    )
    node_id = models.CharField(max_length=100)
    # Where the node sits in the plan (`setup/1/badge`); the id at the top.
    node_path = models.CharField(max_length=300, blank=True, default="")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    purpose = models.CharField(
        max_length=20,
        choices=RequestPurpose.choices,
        blank=True,
        default="",
        help_text="What the paused run does with the decision.",
    )
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    fields = models.JSONField(
        default=dict, blank=True, help_text="JSON Schema (type object) of the values asked for."
    )
    values = models.JSONField(default=dict, blank=True)
    state = models.JSONField(
        default=dict, blank=True, help_text="What the paused step needs to continue."
    )
    assigned_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Set by delegation to one person.",
    )
    guards = models.JSONField(
        default=list,
        blank=True,
        help_text="The actions this request guards: node, position, action, risk, "
        "resolved params and their digest.",
    )
    digest = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the guarded actions' resolved parameters.",
    )
    quorum = models.PositiveSmallIntegerField(default=1)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    on_timeout = models.CharField(max_length=16, choices=OnTimeout.choices, blank=True)
    escalate_to = models.CharField(max_length=150, blank=True)
    status = models.CharField(
        max_length=16,
        choices=RequestStatus.choices,
        default=RequestStatus.PENDING,
        db_index=True,
    )
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("decide_approvalrequest", "Can decide approval requests")]
        # The inbox lists pending (or decided) requests newest first, and
        # counts the overdue ones.
        indexes = [
            models.Index(fields=["status", "-created_at", "-id"], name="request_status_created"),
            models.Index(fields=["status", "due_at"], name="request_status_due"),
            models.Index(fields=["assigned_user", "status"], name="request_user_status"),
            # The metrics and the SLA report read decisions by their time.
            models.Index(fields=["decided_at"], name="request_decided"),
            # Pending and overdue requests by group (the metrics and the
            # dashboard), in one pass over the pending requests alone; status
            # is in the columns too so that SQLite reads the index alone.
            models.Index(
                fields=["assigned_group", "due_at", "status"],
                name="request_pending_group_due",
                condition=Q(status="pending"),
            ),
        ]
        constraints = [
            # One question at a time per node: a run's parallel branches and
            # map items may each wait for a person at once.
            models.UniqueConstraint(
                fields=["run", "node_path"],
                condition=Q(status="pending"),
                name="one_pending_request_per_node",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", decided_at__isnull=True)
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="request_decided_iff_not_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # A request at the top of the plan is where its node id says.
        self.node_path = self.node_path or self.node_id
        super().save(*args, **kwargs)

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def is_overdue(self) -> bool:
        return bool(self.is_pending and self.due_at and self.due_at < timezone.now())


class Decision(models.Model):
    """One person's vote on a request; a quorum counts distinct approvers."""

    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.PROTECT, related_name="decisions"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150)
    decision = models.CharField(
        max_length=8, choices=[("approve", "Approve"), ("reject", "Reject")]
    )
    values = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True)
    digest = models.CharField(
        max_length=64, blank=True, help_text="The digest of what this person approved."
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "actor"], name="one_decision_per_person"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label}: {self.decision}"


class WorkflowWebhook(models.Model):
    """Where approval events of a workflow are POSTed, signed with HMAC-SHA256.

    The signing key is a named secret (AGENTOS_SECRET_WEBHOOK_<...>), never
    stored; the URL's origin must be on AGENTOS_WEBHOOK_ALLOWED_HOSTS.
    """

    workflow = models.OneToOneField(
        Workflow, on_delete=models.CASCADE, related_name="approval_webhook"
    )
    url = models.URLField(max_length=500)
    secret_name = models.CharField(
        max_length=64, help_text="The secret NAME: its value is AGENTOS_SECRET_<NAME>."
    )
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.workflow.slug} -> {self.url}"

    def clean(self) -> None:
        """Refuse a URL off AGENTOS_WEBHOOK_ALLOWED_HOSTS or a key outside WEBHOOK_..."""
        from approvals.notifications import webhook_problems

        problems = webhook_problems(self.url or "", self.secret_name or "")
        if problems:
            raise ValidationError(problems)


class SlackMessage(models.Model):
    """The Slack message that shows one request, and the state of its delivery.

    Written when the request opens in a workflow or gate with a
    ``slack_channel``; a worker task posts it and updates it after every
    change (approvals.slack.tasks). ``ts`` is Slack's id of the message.
    """

    request = models.OneToOneField(
        ApprovalRequest, on_delete=models.CASCADE, related_name="slack_message"
    )
    channel = models.CharField(max_length=80)
    ts = models.CharField(max_length=40, blank=True)
    # Where the request was decided, for the message ("in Slack").
    decided_via = models.CharField(max_length=20, blank=True)
    # What the message showed when last posted or updated (a digest of its
    # blocks): a change is sent, a repeat is not.
    shown = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    failed = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.channel} {self.ts or '(not posted)'}"


class SlackDelivery(models.Model):
    """A signed Slack request seen in the last minutes: the replay store.

    The signature is unique, so the same delivery is accepted once even
    when several web processes receive it.
    """

    signature = models.CharField(max_length=80, unique=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.signature
