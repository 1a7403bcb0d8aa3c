"""What happened in a lane: a step's result, a step's question, a person's decision.

`record` commits a lane step's end here (the lane moves on, or waits for a
person); `approvals` moves a waiting lane on when its request is decided.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from workflows import graph
from workflows.engine.base import Launch, append_event
from workflows.engine.lane_nodes import lane_unknown
from workflows.engine.lanes import (
    block_save,
    block_state,
    chain_at,
    chain_of,
    decisions_of,
    in_item,
    lane_move,
    lane_move_on,
    lane_nodes,
    lane_pause,
    writes_of,
)
from workflows.models import Run, Step
from workflows.plans import PlanError, PlanInvalid
from workflows.services import apply_outputs, enqueue_advance, merge_values, run_fail, set_status
from workflows.states import RunStatus, StepStatus


class LaneRequest(Protocol):
    """What `lane_resume` reads of a decided request (approvals' ApprovalRequest)."""

    pk: Any
    node_id: str
    purpose: str
    state: dict[str, Any]
    step_id: int | None


def lane_recorded(run: Run, launch: Launch, step: Step) -> tuple[dict[str, Any], bool]:
    """Apply a lane step's outputs and move its lane on.

    Return the change and whether it went to a map item's outputs (the
    lane's, or those of the item it is nested in) rather than the context.
    """
    state = block_state(run)
    chain = chain_of(run, launch.lane)
    block, _state, lane = chain[-1]
    nodes = lane_nodes(block, lane["index"])
    item = in_item(chain)
    if item:
        changed = {
            key: (step.output or {}).get(f) for key, f in launch.node.get("outputs", {}).items()
        }
        writes_of(run, chain).update(changed)
    else:
        changed = apply_outputs(run, launch.node, step.output or {})
    lane_move_on(lane, nodes)
    block_save(run, state)
    return changed, item


def lane_paused(
    run: Run,
    launch: Launch,
    step: Step,
    *,
    purpose: str,
    kind: str,
    title: str,
    fields: dict[str, Any],
    state: dict[str, Any],
) -> None:
    """Open a request for a lane whose action asked for a value."""
    saved = block_state(run)
    block, _state, lane = chain_of(run, launch.lane)[-1]
    lane_pause(
        run,
        block,
        lane,
        launch.node,
        launch.node_path,
        step=step,
        purpose=purpose,
        kind=kind,
        title=title,
        fields=fields,
        state=state,
    )
    block_save(run, saved)


def lane_outcome_unknown(run: Run, launch: Launch, step: Step) -> None:
    """Open a request for a lane whose non-idempotent action may have run."""
    saved = block_state(run)
    block, _state, lane = chain_of(run, launch.lane)[-1]
    lane_unknown(run, block, lane, launch.node, launch.node_path, step)
    block_save(run, saved)


def lane_resume(
    *,
    run: Run,
    actor: Any,
    request: LaneRequest,
    decision: str,
    values: dict[str, Any],
    comment: str,
    resolution: str,
    decided: dict[str, Any] | None = None,
) -> None:
    """Move a lane on after a person decided its request (the caller's transaction).

    `decided` is a gate's decision, readable as `decisions.<gate>`: in a
    map's item (at any depth) by that item's later nodes only, else by all.
    """
    state = block_state(run)
    path = request.state.get("lane")
    chain = chain_at(run, path)
    lane = chain[-1][2] if chain else None
    if (
        chain is None
        or lane is None
        or lane["status"] != "waiting"
        or lane["request"] != request.pk
    ):
        raise PlanInvalid(
            [PlanError(request.node_id, "node", "the run is no longer at this node")]
        )
    block = chain[-1][0]
    nodes = lane_nodes(block, lane["index"])
    node = nodes[lane["position"]]
    purpose = request.purpose
    node_path = f"{path}/{node['id']}"
    lane["status"], lane["request"] = "active", None
    if decided is not None:
        decisions_of(run, chain)[node["id"]] = decided
    if decision == "reject":
        target = (
            graph.reject_target(nodes, lane["position"]) if purpose == "approval_node" else None
        )
        if target is None:
            who = actor.get_username() if actor is not None else "the system"
            run_fail(run=run, actor=actor, node=node_path, error=f"rejected by {who}: {comment}")
            return
        lane_move(lane, nodes, target)
    else:
        target_values = writes_of(run, chain)
        clear = lane["clearance"]
        if (clear.get("position"), clear.get("node")) != (lane["position"], node["id"]):
            clear = {"node": node["id"], "position": lane["position"]}
        if purpose in ("approval_node", "input_node"):
            merge_values(target_values, values)
            lane_move_on(lane, nodes)
            clear = lane["clearance"]
        elif purpose == "missing":
            merge_values(target_values, values)
        elif purpose == "mode_gate":
            clear = {**clear, "approved": True}
        elif purpose == "action_input":
            merge_values(target_values, values)
            state_values = {
                k: v for k, v in request.state.items() if k not in ("purpose", "lane", "block")
            }
            clear = {**clear, "resume": True, "state": state_values, "values": values}
        elif purpose == "unknown_outcome" and resolution == "retry":
            clear = {**clear, "retry": True}
        elif purpose == "unknown_outcome" and resolution == "mark_done":
            if request.step_id is None:
                raise Step.DoesNotExist(f"request {request.pk} names no step")
            step = Step.objects.select_for_update().get(pk=request.step_id, run=run)
            step.status, step.output = StepStatus.SUCCEEDED, values
            step.finished_at = step.finished_at or timezone.now()
            step.error = "marked done by a reviewer"
            step.save()
            changed = {key: values.get(f) for key, f in node.get("outputs", {}).items()}
            target_values.update(changed)
            append_event(
                run,
                type="step.marked_done",
                data={
                    "step": step.pk,
                    "node": node["id"],
                    "node_path": node_path,
                    "output": values,
                    "context": changed,
                },
            )
            lane_move_on(lane, nodes)
            clear = lane["clearance"]
        lane["clearance"] = clear
    block_save(run, state)
    append_event(
        run,
        type="node.resumed",
        data={
            "node": node["id"],
            "node_path": node_path,
            "purpose": "on_reject" if decision == "reject" else purpose,
            "resolution": resolution,
            "values": values,
        },
    )
    if run.status == RunStatus.WAITING:
        set_status(run, RunStatus.QUEUED)
        append_event(
            run,
            type="run.resumed",
            data={
                "from": "waiting",
                "node": run.current_node,
                "purpose": "block",
                "resolution": "",
                "values": {},
                "next_node": run.current_node,
            },
        )
        run_id = run.pk
        transaction.on_commit(lambda: enqueue_advance(run_id))
    run.save_state()
