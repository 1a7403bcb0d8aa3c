"""Histograms of settled facts: a rolled-up past plus the last few minutes.

A finished step and a decided request never change afterwards, so counting
every one of them at each scrape (300,000 steps at 100,000 runs) repeats work
forever. Instead each family keeps `MetricRollup` rows of what finished
before its `RollupMark`, and a scrape adds, from an index on the finish
time, only what finished since. The mark trails the clock by
AGENTOS_METRICS_SETTLE_S (five minutes), longer than any transaction that
records a step or a decision takes to commit, so a row committed late is
still counted live rather than missed. A scrape moves the mark forward when
it is more than a minute behind; the first scrape after an upgrade therefore
counts the whole history once.

Every web process reads the same rows, so every process answers the same
numbers; moving the mark is one transaction that locks the mark's row
(PostgreSQL) or the database (SQLite's IMMEDIATE transactions).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestStatus
from observability.models import MetricRollup, RollupMark
from workflows.models import Run, Step
from workflows.states import TERMINAL, StepStatus

# A step whose outcome is known: neither in flight nor awaiting a person's word.
_STEP_SETTLED = frozenset(StepStatus) - {StepStatus.RUNNING, StepStatus.UNKNOWN}

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ADVANCE_EVERY = timedelta(seconds=60)

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
NO_WORKFLOW = "plan"  # a run of a bare plan has no workflow


@dataclass
class Tally:
    """Counts for one label set: all rows, timed rows, their sum and buckets."""

    count: int = 0
    timed: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=list)

    def add(self, seconds: float | None, bounds: Sequence[float]) -> None:
        self.count += 1
        if seconds is None:
            return
        if not self.buckets:
            self.buckets = [0] * len(bounds)
        self.timed += 1
        self.total += seconds
        index = bisect.bisect_left(bounds, seconds)
        if index < len(bounds):
            self.buckets[index] += 1

    def merge(self, other: Tally) -> None:
        self.count += other.count
        self.timed += other.timed
        self.total += other.total
        if other.buckets:
            if not self.buckets:
                self.buckets = [0] * len(other.buckets)
            self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    def cumulative(self, bounds: Sequence[float]) -> list[int]:
        """Return the cumulative count at each bound (Prometheus' `le`)."""
        running, out = 0, []
        for n in self.buckets or [0] * len(bounds):
            running += n
            out.append(running)
        return out


Rows = Iterable[tuple[tuple[str, ...], float | None]]


def _step_rows(since: datetime, until: datetime | None) -> Rows:
    qs = Step.objects.filter(status__in=sorted(_STEP_SETTLED), finished_at__gte=since)
    if until is not None:
        qs = qs.filter(finished_at__lt=until)
    for action, status, ms in qs.order_by().values_list("action", "status", "duration_ms"):
        yield (action, status), (None if ms is None else ms / 1000)


def _decision_rows(since: datetime, until: datetime | None) -> Rows:
    qs = ApprovalRequest.objects.filter(
        status__in=[RequestStatus.APPROVED, RequestStatus.REJECTED], decided_at__gte=since
    )
    if until is not None:
        qs = qs.filter(decided_at__lt=until)
    rows = qs.order_by().values_list("run__workflow__slug", "kind", "created_at", "decided_at")
    for slug, kind, opened, decided in rows:
        yield (slug or NO_WORKFLOW, kind), max(0.0, (decided - opened).total_seconds())


def _ended_run_rows(since: datetime, until: datetime | None) -> Rows:
    # An ended run never changes status again (workflows.states.TRANSITIONS),
    # and a check constraint gives every ended run its finished_at.
    qs = Run.objects.filter(status__in=sorted(TERMINAL), finished_at__gte=since)
    if until is not None:
        qs = qs.filter(finished_at__lt=until)
    for status in qs.order_by().values_list("status", flat=True):
        yield (status,), None


@dataclass(frozen=True)
class Family:
    name: str
    bounds: tuple[float, ...]
    rows: Callable[[datetime, datetime | None], Rows]


STEPS = Family("steps", STEP_BUCKETS, _step_rows)
DECISIONS = Family("decisions", DECISION_BUCKETS, _decision_rows)
ENDED_RUNS = Family("ended_runs", (), _ended_run_rows)  # counts only


def _tally(family: Family, rows: Rows) -> dict[tuple[str, ...], Tally]:
    out: dict[tuple[str, ...], Tally] = {}
    for labels, seconds in rows:
        out.setdefault(labels, Tally()).add(seconds, family.bounds)
    return out


def _mark(family: Family, known: RollupMark | None = None) -> RollupMark:
    if known is not None:
        return known
    mark = RollupMark.objects.filter(family=family.name).first()
    if mark is not None:
        return mark
    try:
        with transaction.atomic():
            mark, _ = RollupMark.objects.get_or_create(
                family=family.name, defaults={"upto": EPOCH}
            )
    except IntegrityError:  # another process created it first
        mark = RollupMark.objects.get(family=family.name)
    return mark


def rollup_advance(
    family: Family, *, now: datetime | None = None, mark: RollupMark | None = None
) -> datetime:
    """Fold what settled since the family's mark into its rollup rows; return the mark.

    `mark` is the family's mark as just read, to spare a query.
    """
    settled = (now or timezone.now()) - timedelta(seconds=settings.AGENTOS_METRICS_SETTLE_S)
    mark = _mark(family, mark)
    if settled - mark.upto < ADVANCE_EVERY:
        return mark.upto
    with transaction.atomic():
        mark = RollupMark.objects.select_for_update().get(pk=mark.pk)
        if settled - mark.upto < ADVANCE_EVERY:  # another process just did it
            return mark.upto
        fresh = _tally(family, family.rows(mark.upto, settled))
        stored = {
            tuple(json.loads(r.labels)): r
            for r in MetricRollup.objects.select_for_update().filter(family=family.name)
        }
        for labels, tally in fresh.items():
            row = stored.get(labels)
            if row is None:
                MetricRollup.objects.create(
                    family=family.name,
                    labels=json.dumps(list(labels)),
                    count=tally.count,
                    timed=tally.timed,
                    total=tally.total,
                    buckets=tally.buckets,
                )
                continue
            merged = Tally(row.count, row.timed, row.total, list(row.buckets))
            merged.merge(tally)
            row.count, row.timed, row.total, row.buckets = (
                merged.count,
                merged.timed,
                merged.total,
                merged.buckets,
            )
            row.save(update_fields=["count", "timed", "total", "buckets"])
        mark.upto = settled
        mark.save(update_fields=["upto"])
        return settled


def tallies(family: Family) -> dict[tuple[str, ...], Tally]:
    """Return every label set's counts: the rollup plus what finished since its mark."""
    return tallies_of(family)[family.name]


def tallies_of(*families: Family) -> dict[str, dict[tuple[str, ...], Tally]]:
    """Return `tallies` of several families, with one query for their marks and
    one for their rollup rows (a scrape reads every family)."""
    names = [f.name for f in families]
    marks = {m.family: m for m in RollupMark.objects.filter(family__in=names)}
    upto = {f.name: rollup_advance(f, mark=marks.get(f.name)) for f in families}
    out: dict[str, dict[tuple[str, ...], Tally]] = {name: {} for name in names}
    # The rows and the mark they add up to, in one statement (one snapshot):
    # a mark moved by another process in between cannot count a row twice.
    mark = RollupMark.objects.filter(family=OuterRef("family")).values("upto")[:1]
    rows = MetricRollup.objects.filter(family__in=names).annotate(upto=Subquery(mark))
    for row in rows:
        upto[row.family] = row.upto
        out[row.family][tuple(json.loads(row.labels))] = Tally(
            row.count, row.timed, row.total, list(row.buckets)
        )
    for family in families:
        counted = out[family.name]
        for labels, tally in _tally(family, family.rows(upto[family.name], None)).items():
            counted.setdefault(labels, Tally()).merge(tally)
    return out
