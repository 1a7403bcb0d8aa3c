"""Reads for the Workers admin, the dashboard and the metrics."""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import Count, QuerySet

from observability.heartbeats import live_processes
from workflows.models import Run
from workflows.states import ACTIVE


def runs_held_by_dead_workers() -> QuerySet[Run]:
    """Return the unfinished runs whose lease names a worker that stopped beating.

    The re-queue schedule recovers them once their lease expires; until then
    an operator sees here which runs a dead worker took with it.
    """
    # A held lease has an expiry (lease_release clears both), so the
    # (status, lease_expires_at) index finds the few leased runs directly.
    return (
        Run.objects.filter(status__in=sorted(ACTIVE), lease_expires_at__isnull=False)
        .exclude(lease_owner="")
        .exclude(lease_owner__in=live_processes().values("name"))
    )


def runs_held_by_dead_workers_count(live: Collection[str] | None = None) -> int:
    """Return how many unfinished runs a dead worker holds (the metric, the dashboard).

    Counted per holder from the partial index of leased runs and the live
    workers taken off: at 100,000 runs this reads the index alone, where
    the count of `runs_held_by_dead_workers` reads every leased run's row.
    `live` is the live workers' names when the caller has read them already.
    """
    if live is None:
        live = set(live_processes().values_list("name", flat=True))
    held = (
        Run.objects.filter(status__in=sorted(ACTIVE), lease_expires_at__isnull=False)
        .exclude(lease_owner="")
        .order_by()
        .values_list("lease_owner")
        .annotate(n=Count("lease_owner"))  # not the id: the index alone answers
    )
    return sum(n for owner, n in held if owner not in live)


def runs_in_flight(names: list[str]) -> dict[str, int]:
    """Return, per worker name, how many unfinished runs it holds the lease of."""
    rows = (
        Run.objects.filter(status__in=sorted(ACTIVE), lease_owner__in=names)
        .values("lease_owner")
        .annotate(n=Count("id"))
    )
    return {row["lease_owner"]: row["n"] for row in rows}
