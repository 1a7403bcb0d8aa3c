"""The one permission policy: who may do what, and see which rows, everywhere.

The admin, the API, the inbox, the websocket consumers and evidence downloads
all ask here. Operations are named; each maps to one Django permission, which
the role groups (agentos_site.roles) grant. Object rules live here too, so no
interface decides alone:

* `sees_everything(user)`: superusers, auditors (who may export the log),
  operators (who may start, cancel or fork any run) and readers who decide
  nothing see every run and request, read-only where their role says so.
* Everyone else who may decide (reviewers) is scoped: `own_requests(user)` are
  the requests assigned to one of their groups or delegated to them by name,
  and `visible_runs(user)` are the runs with at least one such request.
* `may_read_system_log(user)`: the Event admin (the whole log, system events
  included) is for auditors and superusers only.

docs/security.md ("Who sees what") has the rule as a table.

The apps import this module, so it imports none of theirs: it names their
models by label (``apps.get_model``), as Django's permissions do.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Q

# Operations, by the permission that grants them.
WORKFLOWS_VIEW = "workflows.view_workflow"
WORKFLOWS_ADD = "workflows.add_workflow"
WORKFLOWS_CHANGE = "workflows.change_workflow"
# Letting a workflow's requesters decide their own runs weakens four-eyes:
# its own permission, which no role group holds (superusers have every one).
WORKFLOWS_SELF_APPROVAL = "workflows.set_self_approval"
RUNS_VIEW = "workflows.view_run"
RUNS_START = "workflows.start_run"
RUNS_CANCEL = "workflows.cancel_run"
RUNS_FORK = "workflows.fork_run"
EVENTS_VIEW = "workflows.view_event"
AUDIT_EXPORT = "workflows.export_event"
SCHEDULES_VIEW = "workflows.view_workflowschedule"
APPROVALS_VIEW = "approvals.view_approvalrequest"
APPROVALS_DECIDE = "approvals.decide_approvalrequest"
TOKENS_VIEW = "accounts.view_apitoken"
TOKENS_ADD = "accounts.add_apitoken"
TOKENS_REVOKE = "accounts.revoke_apitoken"
# The Workers admin, the operations dashboard and the SLA report (operators,
# auditors): aggregate figures over every run and request.
OPERATIONS_VIEW = "observability.view_workerheartbeat"

OPERATIONS = frozenset(
    {
        WORKFLOWS_VIEW,
        WORKFLOWS_ADD,
        WORKFLOWS_CHANGE,
        RUNS_VIEW,
        RUNS_START,
        RUNS_CANCEL,
        RUNS_FORK,
        EVENTS_VIEW,
        AUDIT_EXPORT,
        SCHEDULES_VIEW,
        APPROVALS_VIEW,
        APPROVALS_DECIDE,
        TOKENS_VIEW,
        TOKENS_ADD,
        TOKENS_REVOKE,
        WORKFLOWS_SELF_APPROVAL,
        OPERATIONS_VIEW,
    }
)


def allows(user: Any, operation: str) -> bool:
    """Return whether an active user may perform `operation` at all."""
    assert operation in OPERATIONS, f"unknown operation {operation}"
    return bool(
        user is not None and user.is_authenticated and user.is_active and user.has_perm(operation)
    )


def may_decide_at_all(user: Any) -> bool:
    """Return whether the user holds the right to decide requests."""
    return allows(user, APPROVALS_DECIDE)


def may_view_requests(user: Any) -> bool:
    """Return whether the user may read requests (reviewers, auditors, operators)."""
    return allows(user, APPROVALS_VIEW) or may_decide_at_all(user)


def may_view_run(user: Any, run_id: int | None = None) -> bool:
    """Return whether the user may watch runs at all or, given an id, that run."""
    if not allows(user, RUNS_VIEW):
        return False
    if run_id is None or sees_everything(user):
        return True
    return visible_runs(user).filter(pk=run_id).exists()


def may_operate_runs(user: Any) -> bool:
    """Return whether the user may start, cancel or fork runs (operators)."""
    return any(allows(user, op) for op in (RUNS_START, RUNS_CANCEL, RUNS_FORK))


def may_read_system_log(user: Any) -> bool:
    """Return whether the user may browse the whole event log (the Event admin)."""
    return allows(user, EVENTS_VIEW) and (user.is_superuser or allows(user, AUDIT_EXPORT))


def sees_everything(user: Any) -> bool:
    """Return whether the user's reading is not narrowed to their groups' work.

    Superusers, auditors and operators see every run and request; so does a
    reader who decides nothing. A person who decides (a reviewer) sees only
    their groups' work, even when another role gives them more rights.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return (
        user.is_superuser
        or allows(user, AUDIT_EXPORT)
        or may_operate_runs(user)
        or not may_decide_at_all(user)
    )


def own_requests(user: Any, through: str = "") -> Q:
    """Return a filter for the requests that are the user's groups' or their own:
    assigned to one of their groups, or delegated to them by name.

    ``through`` prefixes the fields, to filter another model by its requests
    (``"approval_requests__"`` for runs).
    """
    group_ids = list(user.groups.values_list("pk", flat=True))
    return Q(**{f"{through}assigned_user_id": user.pk}) | Q(
        **{f"{through}assigned_group_id__in": group_ids}
    )


def visible_runs(user: Any, queryset: Any = None) -> Any:
    """Narrow runs to those the user may see (see the module docstring)."""
    if queryset is None:
        queryset = apps.get_model("workflows", "Run").objects.all()
    if not allows(user, RUNS_VIEW):
        return queryset.none()
    if sees_everything(user):
        return queryset
    runs = queryset.model.objects.filter(own_requests(user, "approval_requests__"))
    return queryset.filter(pk__in=runs.values("pk"))


def self_approval_allowed(run: Any) -> bool:
    """Return whether the run's frozen workflow version lets its requester decide.

    The version the run froze when it started decides, never the live
    workflow: a requester who later turns `allow_self_approval` on (or gets
    someone to) does not thereby approve a run already under way. A run of a
    bare plan has no workflow, so never.
    """
    if not run.workflow_id or run.workflow_version is None:
        return False
    cached = getattr(run, "_self_approval_allowed", None)
    if cached is None:
        WorkflowVersion = apps.get_model("workflows", "WorkflowVersion")
        spec = (
            WorkflowVersion.objects.filter(
                workflow_id=run.workflow_id, version=run.workflow_version
            )
            .values_list("spec", flat=True)
            .first()
        ) or {}
        cached = bool(spec.get("allow_self_approval"))
        run._self_approval_allowed = cached
    return cached


def decide_refusal(user: Any, request: Any, run: Any) -> str:
    """Return why the user may not decide this request, or "" when they may."""
    if not may_decide_at_all(user):
        return "you do not have the right to decide requests"
    if not user.is_superuser:
        if request.assigned_user_id:
            if request.assigned_user_id != user.pk:
                return f"this request is delegated to {request.assigned_user.get_username()}"
        elif (
            request.assigned_group_id
            and not user.groups.filter(pk=request.assigned_group_id).exists()
        ):
            return f"this request is assigned to {request.assigned_group.name}"
    if run.requester_id is None:
        # Four-eyes compares the decider with the requester: with nobody
        # recorded, anyone (the person who set the run off included) could
        # pass it. Such a run is cancelled or forked, never decided.
        return (
            "this run has no requester, so four-eyes cannot be checked; nobody may "
            "decide it (cancel it, or fork it to become its requester)"
        )
    if run.requester_id == user.pk and not self_approval_allowed(run):
        return "you started this run; another person must decide (four-eyes)"
    return ""


def decidable_by(user: Any) -> Q:
    """Return a filter for the requests assigned to the user or their groups."""
    if user.is_superuser:
        return Q()
    group_ids = list(user.groups.values_list("pk", flat=True))
    return Q(assigned_user=user) | Q(assigned_user__isnull=True, assigned_group_id__in=group_ids)


def visible_requests(user: Any, queryset: Any = None) -> Any:
    """Narrow approval requests to those the user may see.

    Reviewers see their own requests (`own_requests`); those who see
    everything (`sees_everything`) see every request, read-only unless they
    may decide.
    """
    if queryset is None:
        queryset = apps.get_model("approvals", "ApprovalRequest").objects.all()
    if not may_view_requests(user):
        return queryset.none()
    if sees_everything(user):
        return queryset
    return queryset.filter(own_requests(user))
