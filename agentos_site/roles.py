"""The roles: Django groups and the permissions each holds."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission

OPERATORS, REVIEWERS, AUDITORS = "Operators", "Reviewers", "Auditors"

_VIEW_ALL = [
    "workflows.view_workflow",
    "workflows.view_workflowversion",
    "workflows.view_run",
    "workflows.view_step",
    "workflows.view_event",
    "approvals.view_approvalrequest",
    "workflows.view_runbatch",
    "workflows.view_workflowschedule",
    "approvals.view_workflowwebhook",
    # The Workers admin (heartbeats), the operations dashboard, the SLA report.
    "observability.view_workerheartbeat",
]
ROLE_PERMISSIONS: dict[str, list[str]] = {
    OPERATORS: _VIEW_ALL
    + [
        "workflows.add_workflow",
        "workflows.change_workflow",
        "workflows.start_run",
        "workflows.cancel_run",
        "workflows.fork_run",
        "workflows.add_runbatch",
        "approvals.add_workflowwebhook",
        "approvals.change_workflowwebhook",
        "approvals.delete_workflowwebhook",
        "workflows.add_workflowschedule",
        "workflows.change_workflowschedule",
        "workflows.delete_workflowschedule",
    ],
    REVIEWERS: [
        "workflows.view_workflow",
        "workflows.view_run",
        "workflows.view_step",
        "workflows.view_event",
        "approvals.view_approvalrequest",
        "approvals.decide_approvalrequest",
    ],
    AUDITORS: _VIEW_ALL + ["workflows.export_event"],
}


def ensure_roles(**_: Any) -> dict[str, Group]:
    """Create the role groups and give each exactly its permissions."""
    groups = {}
    for name, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = []
        for code in codes:
            app_label, codename = code.split(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)
        groups[name] = group
    return groups
