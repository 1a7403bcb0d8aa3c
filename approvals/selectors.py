"""Reads for the inbox: what a person sees, filtered and counted."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from approvals.permissions import decidable_by, may_decide_at_all, visible_requests
from workflows.selectors import redact

__all__ = [
    "FILTERS",
    "inbox_counts",
    "inbox_requests",
    "next_request",
    "queue_neighbours",
    "redact",
]

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


def queue_neighbours(
    user: Any, obj: ApprovalRequest
) -> tuple[ApprovalRequest | None, ApprovalRequest | None]:
    """Return the pending requests listed just above and below obj in the inbox.

    The inbox lists newest first, so "previous" (k) is the next newer one and
    "next" (j) the next older one; two indexed look-ups, no count.
    """
    pending = visible_requests(user).filter(status=RequestStatus.PENDING).exclude(pk=obj.pk)
    newer = (
        pending.filter(
            Q(created_at__gt=obj.created_at) | Q(created_at=obj.created_at, id__gt=obj.pk)
        )
        .order_by("created_at", "id")
        .only("id", "title")
        .first()
    )
    older = (
        pending.filter(
            Q(created_at__lt=obj.created_at) | Q(created_at=obj.created_at, id__lt=obj.pk)
        )
        .order_by("-created_at", "-id")
        .only("id", "title")
        .first()
    )
    return newer, older


def next_request(user: Any, obj: ApprovalRequest) -> ApprovalRequest | None:
    """Return what the user could decide next: the same run's first, else the queue's.

    Offered after a decision, so the reviewer goes on without going back to
    the list. Only requests assigned to the user or their groups count.
    """
    if not may_decide_at_all(user):
        return None
    mine = (
        visible_requests(user)
        .filter(status=RequestStatus.PENDING)
        .filter(decidable_by(user))
        .exclude(pk=obj.pk)
        .only("id", "title", "run_id")
    )
    return (
        mine.filter(run_id=obj.run_id).order_by("created_at", "id").first()
        or mine.order_by("-created_at", "-id").first()
    )
