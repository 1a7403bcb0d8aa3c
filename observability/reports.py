"""Reads for the operations dashboard and the SLA report.

Every query is bounded by a period and served by an index (runs by
creation time, steps by finish time, requests by status, creation or
decision time, events by type), so the dashboard stays quick at 100,000
runs.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncMinute
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestStatus
from observability import metrics
from observability.metrics import UNASSIGNED
from observability.models import ProcessKind
from observability.rollup import NO_WORKFLOW
from observability.selectors import runs_held_by_dead_workers_count
from workflows.models import Event, Step
from workflows.states import STEP_FAILED, RunStatus

DECIDED = [RequestStatus.APPROVED, RequestStatus.REJECTED]


def percentile(values: list[float], q: float) -> float | None:
    """Return the nearest-rank `q` quantile (0..1), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


# The run events that move a run into each status (as workflows.replay reads
# them): a run is queued when created, resumed, re-queued or woken by its
# child; running when a worker takes it; waiting when it pauses for a person
# or starts a child run.
STATUS_EVENTS: dict[str, tuple[str, ...]] = {
    RunStatus.QUEUED: (
        "run.created",
        "run.resumed",
        "run.requeued",
        "run.lease_expired",
        "child.ended",
    ),
    RunStatus.RUNNING: ("run.running",),
    RunStatus.WAITING: ("run.paused", "child.started"),
    RunStatus.SUCCEEDED: ("run.succeeded",),
    RunStatus.FAILED: ("run.failed",),
    RunStatus.CANCELLED: ("run.cancelled",),
}


def runs_over_time(now: datetime, hours: int = 24) -> dict[str, Any]:
    """Runs that reached each status in each of the last `hours` hours.

    Read from the event log: a run counts once per status and hour however
    often it got there (a run taken by workers five times in an hour is one
    run that ran). Served by the (type, at, run) index on events, so the
    work grows with the last day's run events, not with the log.
    """
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    slots = [start + timedelta(hours=i) for i in range(hours)]
    series = {status: [0] * hours for status in RunStatus.values}
    by_type = {t: status for status, types in STATUS_EVENTS.items() for t in types}
    rows = (
        Event.objects.filter(type__in=sorted(by_type), at__gte=start, run__isnull=False)
        .order_by()
        .values_list("type", "at", "run_id")
    )
    seen: set[tuple[int, str, int]] = set()
    for event_type, at, run_id in rows.iterator(chunk_size=5000):
        i = int((at - start).total_seconds() // 3600)
        if 0 <= i < hours:
            seen.add((i, by_type[event_type], run_id))
    for i, status, _run in seen:
        series[status][i] += 1
    return {"labels": [_iso(s)[11:16] for s in slots], "series": series}


def steps_per_minute(now: datetime, minutes: int = 60) -> dict[str, Any]:
    """Steps that finished in each of the last `minutes` minutes."""
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    slots = [start + timedelta(minutes=i) for i in range(minutes)]
    counts = [0] * minutes
    rows = (
        Step.objects.filter(finished_at__gte=start)
        .annotate(minute=TruncMinute("finished_at"))
        .order_by()
        .values("minute")
        .annotate(n=Count("id"))
    )
    index = {slot: i for i, slot in enumerate(slots)}
    for row in rows:
        i = index.get(row["minute"])
        if i is not None:
            counts[i] = row["n"]
    return {"labels": [_iso(s)[11:16] for s in slots], "counts": counts}


def failed_steps_by_action(since: datetime) -> QuerySet[Step, dict[str, Any]]:
    """Return the query counting the steps that failed since `since`, per action.

    The (status, finished_at, action) index answers it alone, one range
    per failed status: a day of failures, not a day of steps' rows.
    """
    return (
        Step.objects.filter(finished_at__gte=since, status__in=sorted(STEP_FAILED))
        .order_by()
        .values("action")
        .annotate(n=Count("*"))
        .order_by("-n", "action")
    )


def failures_by_action(since: datetime) -> list[dict[str, Any]]:
    rows = failed_steps_by_action(since)
    return [{"action": r["action"], "failures": r["n"]} for r in rows[:20]]


def requests_by_group(now: datetime) -> list[dict[str, Any]]:
    rows = metrics.requests_by_group(now).items()
    return sorted(
        ({"group": group, "pending": n, "overdue": late} for group, (n, late) in rows),
        key=lambda r: (-r["pending"], r["group"]),
    )


def oldest_waiting(limit: int = 10) -> list[dict[str, Any]]:
    now = timezone.now()
    rows = (
        ApprovalRequest.objects.filter(status=RequestStatus.PENDING)
        .select_related("run__workflow", "assigned_group")
        .order_by("created_at", "id")[:limit]
    )
    return [
        {
            "id": r.pk,
            "title": r.title,
            "workflow": r.run.workflow.slug if r.run.workflow_id else NO_WORKFLOW,
            "group": r.assigned_group.name if r.assigned_group_id else UNASSIGNED,
            "waiting_s": int((now - r.created_at).total_seconds()),
            "overdue": bool(r.due_at and r.due_at < now),
            "url": reverse("admin:approvals_approvalrequest_change", args=[r.pk]),
        }
        for r in rows
    ]


@dataclass
class SlaRow:
    """One line of the SLA report: a workflow's or a group's requests in a period."""

    by: str  # "workflow" or "group"
    name: str
    requests: int = 0
    decided: int = 0
    median_s: float | None = None
    p95_s: float | None = None
    overdue: int = 0
    escalated: int = 0
    timed_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SLA_FIELDS = [
    "by",
    "name",
    "requests",
    "decided",
    "median_s",
    "p95_s",
    "overdue",
    "escalated",
    "timed_out",
]


def _events_by_request(types: list[str], since: datetime) -> dict[str, set[int]]:
    """Return, per event type, the ids of the requests it names (since `since`)."""
    out: dict[str, set[int]] = defaultdict(set)
    rows = Event.objects.filter(type__in=types, at__gte=since).values_list("type", "data")
    for event_type, data in rows.iterator(chunk_size=2000):
        request_id = data.get("request") if isinstance(data, dict) else None
        if isinstance(request_id, int):
            out[event_type].add(request_id)
    return out


def sla_report(start: datetime, end: datetime) -> list[SlaRow]:
    """Return per workflow, then per group, the requests opened in [start, end).

    `decided` counts those a person approved or rejected (by now), with the
    median and 95th percentile of their time to decision (a timeout applied
    by itself is not a decision); `overdue` those decided after
    their due time or still pending past it; `escalated` and `timed_out`
    those whose due time passed undecided (and, for escalations, went to
    another group). A group is the one a request is assigned to now.
    """
    now = timezone.now()
    requests = list(
        ApprovalRequest.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list(
            "pk",
            "run__workflow__slug",
            "assigned_group__name",
            "status",
            "created_at",
            "decided_at",
            "due_at",
            "decided_by",
        )
    )
    marks = _events_by_request(["approval.escalated", "approval.timed_out"], start)
    waits: dict[tuple[str, str], list[float]] = defaultdict(list)
    rows: dict[tuple[str, str], SlaRow] = {}
    for pk, slug, group, status, opened, decided_at, due, decider in requests:
        keys = [("workflow", slug or NO_WORKFLOW), ("group", group or UNASSIGNED)]
        # A timeout that approved or rejected by itself is nobody's decision:
        # it counts as timed out (and overdue), not as a time to decision.
        by_timeout = decider is None and pk in marks["approval.timed_out"]
        decided = status in DECIDED and not by_timeout
        # Overdue: decided after its due time, still pending past it, or
        # timed out (an escalation clears the due time it missed).
        late = pk in marks["approval.timed_out"] or bool(
            due and ((decided_at or now) > due) and status != RequestStatus.CANCELLED
        )
        for key in keys:
            row = rows.setdefault(key, SlaRow(by=key[0], name=key[1]))
            row.requests += 1
            row.overdue += late
            row.escalated += pk in marks["approval.escalated"]
            row.timed_out += pk in marks["approval.timed_out"]
            if decided:
                row.decided += 1
                waits[key].append((decided_at - opened).total_seconds())
    for key, row in rows.items():
        row.median_s = statistics.median(waits[key]) if waits[key] else None
        row.p95_s = percentile(waits[key], 0.95)
    return sorted(rows.values(), key=lambda r: (r.by != "workflow", r.name))


DECISION_TIMES_KEY = "observability:dashboard:decision-times"
DECISION_TIMES_TTL_S = 60


def decision_times(now: datetime) -> dict[str, Any]:
    """Return the SLA rows of requests opened in the last 30 days, and when
    they were computed.

    At 100,000 runs that is some 15,000 requests read and sorted: about half
    a second of work, which a dashboard refreshing on every run change would
    repeat each second. These slow-moving figures are computed at most once
    a minute (per cache: shared through Redis when set, else per process),
    and the panel says how old they are.
    """
    cached = cache.get(DECISION_TIMES_KEY)
    if cached is not None:
        return cached
    rows = sla_report(now - timedelta(days=30), now + timedelta(seconds=1))
    fresh = {"at": now.isoformat(), "rows": [r.as_dict() for r in rows]}
    cache.set(DECISION_TIMES_KEY, fresh, DECISION_TIMES_TTL_S)
    return fresh


def dashboard_data(now: datetime | None = None) -> dict[str, Any]:
    """Return everything the operations dashboard draws, as JSON-ready data."""
    now = now or timezone.now()
    day = now - timedelta(days=1)
    decisions = decision_times(now)
    return {
        "at": now.isoformat(),
        "runs_over_time": runs_over_time(now),
        "runs_now": metrics.runs_by_status(),
        "steps_per_minute": steps_per_minute(now),
        "failures_by_action": failures_by_action(day),
        "requests_by_group": requests_by_group(now),
        "decision_times": decisions["rows"],
        "decision_times_at": decisions["at"],
        "escalations": {
            "day": Event.objects.filter(type="approval.escalated", at__gte=day).count(),
            "week": Event.objects.filter(
                type="approval.escalated", at__gte=now - timedelta(days=7)
            ).count(),
        },
        "oldest_waiting": oldest_waiting(),
        "workers": metrics.live_by_kind()[ProcessKind.WORKER],
        "held_by_dead_workers": runs_held_by_dead_workers_count(),
    }
