"""The one permission policy: who may do what, for every interface.

The admin, the API, the inbox and the websocket consumers all ask here.
Operations are named; each maps to one Django permission, which the role
groups (agentos_site.roles) grant. Object rules (which approval requests a
reviewer sees, four-eyes) live here too, so no interface decides alone.
"""

from __future__ import annotations

from typing import Any

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

OPERATIONS = frozenset({
    WORKFLOWS_VIEW, WORKFLOWS_ADD, WORKFLOWS_CHANGE, RUNS_VIEW, RUNS_START, RUNS_CANCEL,
    RUNS_FORK, EVENTS_VIEW, AUDIT_EXPORT, SCHEDULES_VIEW, APPROVALS_VIEW, APPROVALS_DECIDE,
    TOKENS_VIEW, TOKENS_ADD, TOKENS_REVOKE,
    WORKFLOWS_SELF_APPROVAL,
})


def allows(user: Any, operation: str) -> bool:
    """Return whether an active user may perform `operation` at all."""
    assert operation in OPERATIONS, f"unknown operation {operation}"
    return bool(user is not None and user.is_authenticated and user.is_active
                and user.has_perm(operation))


def may_decide_at_all(user: Any) -> bool:
    """Return whether the user holds the right to decide requests."""
    return allows(user, APPROVALS_DECIDE)


def may_view_requests(user: Any) -> bool:
    """Return whether the user may read requests (reviewers, auditors, operators)."""
    return allows(user, APPROVALS_VIEW) or may_decide_at_all(user)


def may_view_run(user: Any, run_id: int | None = None) -> bool:
    """Return whether the user may watch a run (its page and its live feed)."""
    return allows(user, RUNS_VIEW)


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
        from workflows.models import WorkflowVersion

        spec = (WorkflowVersion.objects.filter(workflow_id=run.workflow_id,
                                               version=run.workflow_version)
                .values_list("spec", flat=True).first()) or {}
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
        elif request.assigned_group_id and not user.groups.filter(
                pk=request.assigned_group_id).exists():
            return f"this request is assigned to {request.assigned_group.name}"
    if run.requester_id is None:
        # Four-eyes compares the decider with the requester: with nobody
        # recorded, anyone (the person who set the run off included) could
        # pass it. Such a run is cancelled or forked, never decided.
        return ("this run has no requester, so four-eyes cannot be checked; nobody may "
                "decide it (cancel it, or fork it to become its requester)")
    if run.requester_id == user.pk and not self_approval_allowed(run):
        return "you started this run; another person must decide (four-eyes)"
    return ""


def decidable_by(user: Any) -> Q:
    """Return a filter for the requests assigned to the user or their groups."""
    if user.is_superuser:
        return Q()
    group_ids = list(user.groups.values_list("pk", flat=True))
    return Q(assigned_user=user) | Q(assigned_user__isnull=True,
                                     assigned_group_id__in=group_ids)


def visible_requests(user: Any, queryset: Any = None) -> Any:
    """Narrow approval requests to those the user may see.

    People who decide see the requests assigned to them or their groups;
    readers who decide nothing (auditors, operators) see every request,
    read-only.
    """
    if queryset is None:
        from approvals.models import ApprovalRequest

        queryset = ApprovalRequest.objects.all()
    if not may_view_requests(user):
        return queryset.none()
    if may_decide_at_all(user):
        return queryset.filter(decidable_by(user))
    return queryset
