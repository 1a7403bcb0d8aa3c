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
from datetime import datetime

from django.contrib.auth.models import Group
from django.db.models import Count, Q, QuerySet
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
from observability import rollup
from observability.heartbeats import live_window
from observability.models import ProcessKind, WorkerHeartbeat
from observability.selectors import runs_held_by_dead_workers_count
from workflows.models import Event, Run
from workflows.states import UNFINISHED, RunStatus

UNASSIGNED = "unassigned"


def unfinished_runs_by_status() -> QuerySet[Run, tuple[str, int]]:
    """Return the query counting unfinished runs per status.

    Its filter is the partial index's own condition and COUNT(*) needs no
    column outside it, so an index alone answers: run_unfinished_status on
    PostgreSQL, the status index on SQLite (see workflows.models.Run). It
    reads as many entries as there are unfinished runs, never the table.
    """
    unfinished = Run.objects.filter(status__in=sorted(UNFINISHED))
    return unfinished.order_by().values_list("status").annotate(n=Count("*"))


def runs_by_status(ended: dict[tuple[str, ...], rollup.Tally] | None = None) -> dict[str, int]:
    """Return how many runs are in each status.

    Unfinished runs are counted from their partial index (they are the
    few); ended runs, the bulk, never change again, so they come from a
    rollup plus the runs that ended since its mark (observability.rollup).
    `ended` is that family's tallies when the caller has read them already.
    """
    counts = dict.fromkeys(RunStatus.values, 0)
    counts.update(unfinished_runs_by_status())
    if ended is None:
        ended = rollup.tallies(rollup.ENDED_RUNS)
    for (status,), tally in ended.items():
        counts[status] = counts.get(status, 0) + tally.count
    return counts


def steps_by_action_status() -> dict[tuple[str, str], int]:
    return {(a, st): t.count for (a, st), t in rollup.tallies(rollup.STEPS).items()}


def step_seconds_by_action(
    steps: dict[tuple[str, ...], rollup.Tally] | None = None,
) -> dict[str, rollup.Tally]:
    """Merge each action's statuses: the histogram's label is the action alone."""
    out: dict[str, rollup.Tally] = {}
    for (action, _status), tally in (steps or rollup.tallies(rollup.STEPS)).items():
        out.setdefault(action, rollup.Tally()).merge(tally)
    return out


def decision_seconds_by_workflow_kind() -> dict[tuple[str, ...], rollup.Tally]:
    return rollup.tallies(rollup.DECISIONS)


def _histogram(tally: rollup.Tally, bounds: Sequence[float]) -> list[tuple[str, float]]:
    # The same spelling as prometheus_client's own histograms: le="300.0".
    cumulative = tally.cumulative(bounds)
    buckets = [(floatToGoString(b), float(n)) for b, n in zip(bounds, cumulative, strict=True)]
    return [*buckets, ("+Inf", float(tally.timed))]


def requests_by_group(now: datetime | None = None) -> dict[str, tuple[int, int]]:
    """Return (pending, overdue) requests per group name.

    One pass over the pending requests in the (status, due_at,
    assigned_group) index, grouped by the group's id, then named with one
    small query: no join over every pending request.
    """
    late = Q(due_at__lt=now or timezone.now())
    rows = list(
        ApprovalRequest.objects.filter(status=RequestStatus.PENDING)
        .order_by()
        .values_list("assigned_group")
        # Counting the indexed columns (not the id) lets PostgreSQL answer
        # from the index alone; a pending request always has a status.
        .annotate(n=Count("status"), late=Count("due_at", filter=late))
    )
    names = dict(
        Group.objects.filter(pk__in=[g for g, _, _ in rows if g]).values_list("pk", "name")
    )
    out: dict[str, tuple[int, int]] = {}
    for group_id, n, overdue in rows:
        name = names.get(group_id, UNASSIGNED)
        was = out.get(name, (0, 0))
        out[name] = (was[0] + n, was[1] + overdue)
    return out


def events_by_type(*types: str) -> dict[str, int]:
    """Return how many events of each type the log holds (the type index alone)."""
    counts = dict.fromkeys(types, 0)
    rows = (
        Event.objects.filter(type__in=types).order_by().values_list("type").annotate(n=Count("*"))
    )
    counts.update(rows)
    return counts


def live_names_by_kind() -> dict[str, list[str]]:
    """Return the names of the processes of each kind that beat within the live window."""
    names: dict[str, list[str]] = {kind: [] for kind in ProcessKind.values}
    rows = WorkerHeartbeat.objects.filter(last_seen__gte=timezone.now() - live_window())
    for kind, name in rows.order_by().values_list("kind", "name"):
        names.setdefault(kind, []).append(name)
    return names


def live_by_kind() -> dict[str, int]:
    """Return how many processes of each kind beat within the live window."""
    return {kind: len(names) for kind, names in live_names_by_kind().items()}


class AgentosCollector(Collector):
    """Collect every agentos_ family from the database, once per scrape."""

    def collect(self) -> Iterator[Metric]:
        rolled = rollup.tallies_of(rollup.ENDED_RUNS, rollup.STEPS, rollup.DECISIONS)
        runs = GaugeMetricFamily("agentos_runs", "Runs by status.", labels=["status"])
        for status, n in runs_by_status(rolled[rollup.ENDED_RUNS.name]).items():
            runs.add_metric([status], n)
        yield runs

        steps = CounterMetricFamily(
            "agentos_steps", "Finished steps by action and status.", labels=["action", "status"]
        )
        step_tallies = rolled[rollup.STEPS.name]
        for (action, status), tally in sorted(step_tallies.items()):
            steps.add_metric([action, status], tally.count)
        yield steps

        step_seconds = HistogramMetricFamily(
            "agentos_step_seconds", "How long finished steps took.", labels=["action"]
        )
        for action, tally in sorted(step_seconds_by_action(step_tallies).items()):
            step_seconds.add_metric([action], _histogram(tally, rollup.STEP_BUCKETS), tally.total)
        yield step_seconds

        decision = HistogramMetricFamily(
            "agentos_decision_seconds",
            "Time from a request's opening to its decision.",
            labels=["workflow", "kind"],
        )
        for (workflow, kind), tally in sorted(rolled[rollup.DECISIONS.name].items()):
            decision.add_metric(
                [workflow, kind], _histogram(tally, rollup.DECISION_BUCKETS), tally.total
            )
        yield decision

        by_group = sorted(requests_by_group().items())
        pending = GaugeMetricFamily(
            "agentos_requests_pending", "Pending requests by assigned group.", labels=["group"]
        )
        overdue = GaugeMetricFamily(
            "agentos_requests_overdue", "Pending requests past their due time.", labels=["group"]
        )
        for group, (n, late) in by_group:
            pending.add_metric([group], n)
            overdue.add_metric([group], late)
        yield pending
        yield overdue

        events = events_by_type("approval.escalated", "approval.timed_out")
        yield CounterMetricFamily(
            "agentos_escalations",
            "Requests escalated to another group when nobody decided in time.",
            value=events["approval.escalated"],
        )
        yield CounterMetricFamily(
            "agentos_requests_timed_out",
            "Requests whose due time passed undecided (on_timeout applied).",
            value=events["approval.timed_out"],
        )
        # One read of the live heartbeats serves the three families below.
        live = live_names_by_kind()
        yield GaugeMetricFamily(
            "agentos_workers",
            "Worker processes with a heartbeat in the last minute.",
            value=len(live[ProcessKind.WORKER]),
        )
        yield GaugeMetricFamily(
            "agentos_web_processes",
            "Web processes with a heartbeat in the last minute.",
            value=len(live[ProcessKind.WEB]),
        )
        yield GaugeMetricFamily(
            "agentos_runs_held_by_dead_workers",
            "Unfinished runs whose lease names a worker that stopped beating.",
            value=runs_held_by_dead_workers_count(live=set(live[ProcessKind.WORKER])),
        )


def registry() -> CollectorRegistry:
    """Return a registry with only the AgentOS collector (no per-process metrics)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(AgentosCollector())
    return reg
