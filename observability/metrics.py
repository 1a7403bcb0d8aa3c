"""The Prometheus metrics: every value read from the database at scrape time.

Why not prometheus_client's counters in each process (and its multiprocess
mode)? Runs are advanced by any number of worker processes on any number of
hosts, and decided in any web process: in-process counters would each hold a
slice, reset on every restart, and multiprocess mode only merges the
processes of one host through a shared folder. The database already holds
every run, step and request with its times, so each scrape asks it, through
indexed grouped queries, and every web process answers the same numbers on
SQLite and PostgreSQL. `bench/bench_metrics.py` measures a scrape at 100,000
runs and 1,000,000 events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from approvals.models import ApprovalRequest, RequestStatus
from observability.heartbeats import live_processes
from observability.models import ProcessKind
from observability.selectors import runs_held_by_dead_workers
from workflows.models import Event, Run, Step
from workflows.states import STEP_FINAL, RunStatus

# Bucket upper bounds, in seconds.
STEP_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
DECISION_BUCKETS: tuple[float, ...] = (
    60,
    300,
    900,
    1800,
    3600,
    4 * 3600,
    8 * 3600,
    24 * 3600,
    3 * 86400,
    7 * 86400,
)
UNASSIGNED = "unassigned"
NO_WORKFLOW = "plan"  # a run of a bare plan has no workflow


def _bucket_label(bound: float) -> str:
    # The same spelling as prometheus_client's own histograms: le="300.0".
    return floatToGoString(bound)


def _histogram_rows(
    rows: Sequence[dict], bounds: Sequence[float]
) -> Iterator[tuple[list[tuple[str, float]], float, dict]]:
    """Turn rows of per-bucket counts (b0, b1, ..., n, total) into cumulative buckets."""
    for row in rows:
        buckets = [(_bucket_label(b), float(row[f"b{i}"])) for i, b in enumerate(bounds)]
        buckets.append(("+Inf", float(row["n"])))
        yield buckets, row["total"], row


def runs_by_status() -> dict[str, int]:
    counts = dict.fromkeys(RunStatus.values, 0)
    for row in Run.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def steps_by_action_status() -> list[dict]:
    return list(
        Step.objects.filter(status__in=sorted(STEP_FINAL))
        .order_by()
        .values("action", "status")
        .annotate(n=Count("id"))
    )


def step_seconds_by_action() -> list[dict]:
    per_bucket = {
        f"b{i}": Count("id", filter=Q(duration_ms__lte=bound * 1000))
        for i, bound in enumerate(STEP_BUCKETS)
    }
    rows = (
        Step.objects.filter(status__in=sorted(STEP_FINAL), duration_ms__isnull=False)
        .order_by()
        .values("action")
        .annotate(n=Count("id"), total_ms=Sum("duration_ms"), **per_bucket)
    )
    return [{**row, "total": (row["total_ms"] or 0) / 1000} for row in rows]


def decision_seconds_by_workflow_kind() -> list[dict]:
    wait = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    per_bucket = {
        f"b{i}": Count("id", filter=Q(wait__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(DECISION_BUCKETS)
    }
    rows = (
        ApprovalRequest.objects.filter(status__in=[RequestStatus.APPROVED, RequestStatus.REJECTED])
        .annotate(wait=wait)
        .order_by()
        .values("run__workflow__slug", "kind")
        .annotate(n=Count("id"), wait_sum=Sum("wait"), **per_bucket)
    )
    out = []
    for row in rows:
        total = row["wait_sum"]
        seconds = total.total_seconds() if isinstance(total, timedelta) else (total or 0) / 1e6
        workflow = row["run__workflow__slug"] or NO_WORKFLOW
        out.append({**row, "total": seconds, "workflow": workflow})
    return out


def requests_by_group(*, overdue: bool) -> dict[str, int]:
    pending = ApprovalRequest.objects.filter(status=RequestStatus.PENDING)
    if overdue:
        pending = pending.filter(due_at__lt=timezone.now())
    rows = pending.order_by().values("assigned_group__name").annotate(n=Count("id"))
    return {row["assigned_group__name"] or UNASSIGNED: row["n"] for row in rows}


def events_of_type(event_type: str) -> int:
    return Event.objects.filter(type=event_type).count()


class AgentosCollector(Collector):
    """Collect every agentos_ family from the database, once per scrape."""

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("agentos_runs", "Runs by status.", labels=["status"])
        for status, n in runs_by_status().items():
            runs.add_metric([status], n)
        yield runs

        steps = CounterMetricFamily(
            "agentos_steps", "Finished steps by action and status.", labels=["action", "status"]
        )
        for row in steps_by_action_status():
            steps.add_metric([row["action"], row["status"]], row["n"])
        yield steps

        step_seconds = HistogramMetricFamily(
            "agentos_step_seconds", "How long finished steps took.", labels=["action"]
        )
        for buckets, total, row in _histogram_rows(step_seconds_by_action(), STEP_BUCKETS):
            step_seconds.add_metric([row["action"]], buckets, total)
        yield step_seconds

        decision = HistogramMetricFamily(
            "agentos_decision_seconds",
            "Time from a request's opening to its decision.",
            labels=["workflow", "kind"],
        )
        rows = decision_seconds_by_workflow_kind()
        for buckets, total, row in _histogram_rows(rows, DECISION_BUCKETS):
            decision.add_metric([row["workflow"], row["kind"]], buckets, total)
        yield decision

        for name, doc, overdue in (
            ("agentos_requests_pending", "Pending requests by assigned group.", False),
            ("agentos_requests_overdue", "Pending requests past their due time.", True),
        ):
            family = GaugeMetricFamily(name, doc, labels=["group"])
            for group, n in sorted(requests_by_group(overdue=overdue).items()):
                family.add_metric([group], n)
            yield family

        yield CounterMetricFamily(
            "agentos_escalations",
            "Requests escalated to another group when nobody decided in time.",
            value=events_of_type("approval.escalated"),
        )
        yield CounterMetricFamily(
            "agentos_requests_timed_out",
            "Requests whose due time passed undecided (on_timeout applied).",
            value=events_of_type("approval.timed_out"),
        )
        yield GaugeMetricFamily(
            "agentos_workers",
            "Worker processes with a heartbeat in the last minute.",
            value=live_processes(ProcessKind.WORKER).count(),
        )
        yield GaugeMetricFamily(
            "agentos_web_processes",
            "Web processes with a heartbeat in the last minute.",
            value=live_processes(ProcessKind.WEB).count(),
        )
        yield GaugeMetricFamily(
            "agentos_runs_held_by_dead_workers",
            "Unfinished runs whose lease names a worker that stopped beating.",
            value=runs_held_by_dead_workers().count(),
        )


def registry() -> CollectorRegistry:
    """Return a registry with only the AgentOS collector (no per-process metrics)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(AgentosCollector())
    return reg
