"""Reads for the inbox: what a person sees, filtered and counted."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from approvals.permissions import decidable_by, may_decide_at_all, visible_requests
from workflows.admin.display import plan_rows
from workflows.selectors import redact

__all__ = ["FILTERS", "inbox_counts", "inbox_requests", "plan_progress", "redact"]

FILTERS = ("scope", "workflow", "kind", "overdue", "archive")


def inbox_requests(user: Any, params: dict[str, str]) -> QuerySet[ApprovalRequest]:
    """Return the requests an inbox lists for the user, newest first."""
    qs = visible_requests(user).select_related(
        "run__workflow", "run__parent__workflow", "assigned_group", "assigned_user", "decided_by"
    )
    if params.get("archive"):
        qs = qs.exclude(status=RequestStatus.PENDING)
    else:
        qs = qs.filter(status=RequestStatus.PENDING)
    scope = params.get("scope", "")
    if scope == "mine":
        qs = qs.filter(assigned_user=user)
    elif scope == "group":
        qs = qs.filter(assigned_user__isnull=True, assigned_group__in=user.groups.all())
    if params.get("workflow"):
        qs = qs.filter(run__workflow__slug=params["workflow"])
    if params.get("kind") in RequestKind.values:
        qs = qs.filter(kind=params["kind"])
    if params.get("overdue"):
        qs = qs.filter(due_at__lt=timezone.now())
    return qs.order_by("-created_at", "-id")


def inbox_counts(user: Any) -> dict[str, int]:
    """Return the navigation counts: pending, mine, overdue."""
    pending = visible_requests(user).filter(status=RequestStatus.PENDING)
    mine = pending.filter(decidable_by(user)) if may_decide_at_all(user) else pending.none()
    return {
        "pending": pending.count(),
        "mine": mine.filter(Q(assigned_user=user)).count(),
        "overdue": pending.filter(due_at__lt=timezone.now()).count(),
    }


def plan_progress(run: Any, request: ApprovalRequest | None = None) -> list[dict[str, Any]]:
    """Return the plan's rows, each marked done, current or next."""
    rows = plan_rows(run.plan)
    for row in rows:
        if row["position"] < run.position:
            row["state"] = "done"
        elif row["position"] == run.position and not run.is_terminal:
            row["state"] = "current"
        else:
            row["state"] = "done" if run.status == "succeeded" else "next"
    return rows
