"""Helpers for the scale and fault tests: ledger plans, what "nothing lost" means.

A run of `ledger_plan` appends `<tag>-s<i> <attempt>` to a ledger file outside
the database at each step; `audit_runs` compares that ledger with the steps,
events and hash chains in the database and lists every discrepancy.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.support.waiting import wait_for

ON_POSTGRES = connection.vendor == "postgresql"


def ledger_plan(
    ledger: Path | str,
    tag: str,
    *,
    steps: int = 5,
    pause_s: float = 0.0,
    max_attempts: int = 1,
    hold: Path | str = "",
) -> dict:
    """Return a plan of `steps` ledger steps writing `<tag>-s<i> <attempt>`.

    Each step waits while the file `hold` names exists (test.ledger_step).
    """
    node: dict[str, Any] = {"action": "test.ledger_step"}
    if max_attempts > 1:
        node["retry"] = {"max_attempts": max_attempts, "backoff_s": 0.1}
    params: dict[str, Any] = {"ledger": str(ledger), "pause_s": pause_s}
    if hold:
        params["hold"] = str(hold)
    return {
        "nodes": [
            {**node, "id": f"s{i}", "params": {**params, "line": f"{tag}-s{i}"}}
            for i in range(steps)
        ]
    }


def start_ledger_runs(
    count: int,
    *,
    requester: Any,
    ledger: Path | str,
    steps: int = 5,
    pause_s: float = 0.0,
    max_attempts: int = 1,
    hold: Path | str = "",
) -> list[int]:
    """Create `count` autonomous runs of a ledger plan; return their ids."""
    from workflows.services import run_create

    return [
        run_create(
            plan=ledger_plan(
                ledger,
                f"r{number}",
                steps=steps,
                pause_s=pause_s,
                max_attempts=max_attempts,
                hold=hold,
            ),
            mode="autonomous",
            requester=requester,
        ).pk
        for number in range(count)
    ]


def finished(run_ids: list[int]) -> int:
    """Return how many of the runs have ended."""
    from workflows.models import Run
    from workflows.states import TERMINAL

    return Run.objects.filter(pk__in=run_ids, status__in=sorted(TERMINAL)).count()


def audit_runs(run_ids: list[int], ledger: Path | str, *, steps: int = 5) -> dict:
    """Check that nothing was lost or done twice; return problems and counts.

    - every run succeeded (no lost or stuck run);
    - each node of each run has exactly one succeeded step, and every step
      row has its `step.started` event (no duplicated completed step, no lost
      event), and every run's last_seq matches its events;
    - the ledger holds each node's succeeded attempt exactly once, no attempt
      wrote twice, and nothing ran that has no step row;
    - every hash chain verifies.
    """
    from workflows.events import verify_all
    from workflows.models import Event, Run, Step
    from workflows.states import RunStatus, StepStatus

    problems: list[str] = []
    runs = {run.pk: run for run in Run.objects.filter(pk__in=run_ids)}
    tags = {}
    for run_id in run_ids:
        run = runs.get(run_id)
        if run is None:
            problems.append(f"run {run_id} is missing")
            continue
        if run.status != RunStatus.SUCCEEDED:
            problems.append(f"run {run_id} is {run.status}: {run.error[:200]}")
        tags[run_id] = run.plan["nodes"][0]["params"]["line"].rsplit("-", 1)[0]

    step_rows = list(
        Step.objects.filter(run_id__in=run_ids).values_list(
            "run_id", "node_id", "attempt", "status", "pk"
        )
    )
    succeeded = Counter((r, n) for r, n, _, s, _ in step_rows if s == StepStatus.SUCCEEDED)
    for run_id in run_ids:
        for i in range(steps):
            if succeeded[(run_id, f"s{i}")] != 1:
                problems.append(
                    f"run {run_id} s{i}: {succeeded[(run_id, f's{i}')]} succeeded steps"
                )
    started = Counter(
        Event.objects.filter(run_id__in=run_ids, type="step.started").values_list(
            "data__step", flat=True
        )
    )
    for run_id, node, attempt, _, pk in step_rows:
        if started[pk] != 1:
            problems.append(
                f"run {run_id} {node} attempt {attempt}: {started[pk]} step.started events"
            )
    counts = Counter(Event.objects.filter(run_id__in=run_ids).values_list("run_id", flat=True))
    for run_id, run in runs.items():
        if counts[run_id] != run.last_seq:
            problems.append(f"run {run_id}: {counts[run_id]} events, last_seq {run.last_seq}")

    by_tag = {tag: run_id for run_id, tag in tags.items()}
    attempts = {(r, n, a) for r, n, a, _, _ in step_rows}
    lines = Path(ledger).read_text().splitlines() if Path(ledger).exists() else []
    written = Counter(lines)
    for line, times in written.items():
        if times > 1:
            problems.append(f"ledger: {line!r} written {times} times (an attempt ran twice)")
        name, _, attempt = line.rpartition(" ")
        tag, _, node = name.rpartition("-")
        if (by_tag.get(tag), node, int(attempt)) not in attempts:
            problems.append(f"ledger: {line!r} has no step row (ran without a record)")
    for run_id, node, attempt, status, _ in step_rows:
        if status == StepStatus.SUCCEEDED and written[f"{tags.get(run_id)}-{node} {attempt}"] != 1:
            problems.append(f"run {run_id} {node}: succeeded attempt {attempt} not in ledger")

    problems += [f"chain: {problem}" for problem in verify_all()]
    retried = sum(1 for _, _, attempt, _, _ in step_rows if attempt > 1)
    return {
        "problems": problems,
        "steps": len(step_rows),
        "ledger_lines": len(lines),
        "retried_attempts": retried,
    }


def fire_requeue_schedule() -> None:
    """Make the periodic re-queue schedule due and let django-q2's scheduler enqueue it.

    The cluster's own scheduler looks every 30 s; calling the same function
    now keeps the test short while going through the real schedule row.
    """
    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from workflows.tasks import REQUEUE_SCHEDULE, ensure_schedules

    ensure_schedules()
    Schedule.objects.filter(name=REQUEUE_SCHEDULE).update(next_run=timezone.now())
    scheduler(broker=get_broker())


def recover(run_ids: list[int], *, timeout: float = 180) -> None:
    """Wait for every run to end, firing the re-queue schedule as a minute would."""
    deadline = time.monotonic() + timeout
    while finished(run_ids) < len(run_ids):
        assert time.monotonic() < deadline, (
            f"{len(run_ids) - finished(run_ids)} of {len(run_ids)} runs never finished"
        )
        fire_requeue_schedule()
        done = finished(run_ids)
        try:
            wait_for(
                lambda done=done: finished(run_ids) > done or done == len(run_ids),
                timeout=3,
                every=0.2,
            )
        except pytest.fail.Exception:
            pass  # no progress for a while: fire the schedule again


def counts(ledger: Path) -> Counter[str]:
    return Counter(ledger.read_text().splitlines() if ledger.exists() else [])
