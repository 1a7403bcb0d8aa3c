"""A step's attempts: starting one, closing one a dead worker left, retrying after failures.

Shared by the top of the plan (`decide`) and a block's lanes (`lane_nodes`);
`name` is the node's id there and its path in a lane.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import router
from django.utils import timezone

from executors.base import Action
from workflows import sql
from workflows.engine.base import FAILED_ATTEMPT, STOP, Launch, Wait, _Stop, append_event
from workflows.models import Run, Step
from workflows.resume import ResumeGrant
from workflows.services import run_fail
from workflows.states import StepStatus


def backoff_left(retry: dict[str, Any], failures: int, last: Step) -> float:
    """Return the seconds left before a failed step's next attempt may start."""
    backoff = float(retry.get("backoff_s", 1.0)) * (2 ** (failures - 1))
    due = (last.finished_at or timezone.now()) + timedelta(seconds=backoff)
    return (due - timezone.now()).total_seconds()


def step_interrupted(run: Run, step: Step, *, path: str = "") -> None:
    """Close an attempt left running by a worker that died (`path`: in a lane)."""
    step.status = StepStatus.INTERRUPTED
    step.error = step.error or "the worker stopped while the step ran"
    step.finished_at = step.finished_at or timezone.now()
    step.save()
    append_event(
        run,
        type="step.interrupted",
        data={
            "step": step.pk,
            "node": step.node_id,
            **({"node_path": path} if path else {}),
            "attempt": step.attempt,
            "status": step.status,
            "error": step.error,
        },
    )


def retry_wait(
    run: Run, node: dict[str, Any], name: str, steps: list[Step]
) -> Wait | _Stop | None:
    """Decide what follows a failed last attempt: fail the run, wait, or go on.

    STOP (the run failed) once `max_attempts` attempts have failed, else a
    Wait for the backoff left, or None when the next attempt may start now.
    """
    last = steps[-1]
    failures = sum(1 for s in steps if s.status in FAILED_ATTEMPT)
    retry = node.get("retry") or {}
    if failures >= int(retry.get("max_attempts", 1)):
        run_fail(
            run=run,
            actor=None,
            node=name,
            error=f"{name}: {last.error or last.status} "
            f"(after {failures} attempt{'s' if failures > 1 else ''})",
        )
        return STOP
    wait = backoff_left(retry, failures, last)
    return Wait(wait) if wait > 0 else None


def start_step(
    run: Run,
    node: dict[str, Any],
    owner: str,
    *,
    action: type[Action],
    params: dict[str, Any],
    position: int,
    visit: int,
    attempt: int,
    key: str,
    grant: ResumeGrant,
    node_path: str = "",
    lane: str | None = None,
) -> Launch:
    """Create a step's attempt (running, ours), its event, and what runs it.

    `node_path` and `lane` are a block's: the step's path and its lane's.
    """
    path = node_path or node["id"]
    step = Step(
        run=run,
        node_id=node["id"],
        node_path=path,
        position=position,
        visit=visit,
        attempt=attempt,
        action=node["action"],
        params=params,
        status=StepStatus.RUNNING,
        idempotency_key=key,
        worker=owner,
        started_at=timezone.now(),
    )
    alias = router.db_for_write(Step)
    if sql.usable(Step, alias):
        sql.insert([step], using=alias)
    else:
        step.save(force_insert=True, using=alias)
    append_event(
        run,
        type="step.started",
        data={
            "step": step.pk,
            "node": node["id"],
            "node_path": path,
            "visit": visit,
            "attempt": attempt,
            "action": node["action"],
            "params": params,
        },
    )
    return Launch(
        run_id=run.pk,
        step_id=step.pk,
        node=node,
        action=node["action"],
        params=params,
        attempt=attempt,
        idempotency_key=key,
        timeout_s=float(node.get("timeout_s") or action.default_timeout_s),
        grant=grant,
        step=step,
        node_path=node_path,
        lane=lane,
        correlation_id=str(run.correlation_id or ""),
    )
