"""Starting a step's attempt, and the backoff before a failed step's next one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from workflows.engine.base import Launch, append_event
from workflows.models import Run, Step
from workflows.resume import ResumeGrant
from workflows.states import StepStatus


def backoff_left(retry: dict[str, Any], failures: int, last: Step) -> float:
    """Return the seconds left before a failed step's next attempt may start."""
    backoff = float(retry.get("backoff_s", 1.0)) * (2 ** (failures - 1))
    due = (last.finished_at or timezone.now()) + timedelta(seconds=backoff)
    return (due - timezone.now()).total_seconds()


def start_step(
    run: Run,
    node: dict[str, Any],
    owner: str,
    *,
    action: Any,
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
    step = Step.objects.create(
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
