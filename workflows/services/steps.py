"""Steps: record one whose outcome a person confirmed."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from workflows.events import event_append
from workflows.models import Run, Step
from workflows.plans import PlanError, PlanInvalid
from workflows.services.context import apply_outputs
from workflows.states import StepStatus


def step_mark_done(*, run: Run, step: Step, output: dict, actor: Any) -> None:
    """Record a step whose outcome a person confirmed, with the outputs they gave."""
    node = run.nodes[step.position]
    missing = [f for f in node.get("outputs", {}).values() if f not in output]
    if missing:
        raise PlanInvalid(
            [
                PlanError(node["id"], f"values.{name}", "this output is required")
                for name in missing
            ]
        )
    step.status, step.output = StepStatus.SUCCEEDED, output
    step.finished_at = step.finished_at or timezone.now()
    step.error = "marked done by a reviewer"
    step.save()
    changed = apply_outputs(run, node, output)
    event_append(
        run=run,
        type="step.marked_done",
        actor=actor,
        data={
            "step": step.pk,
            "node": step.node_id,
            "attempt": step.attempt,
            "output": output,
            "context": changed,
        },
    )
    from workflows.engine import flow

    flow.move_on(run)
