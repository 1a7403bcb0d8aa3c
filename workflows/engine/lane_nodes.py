"""What a lane does at each kind of node: branch, ask, action, child workflow.

Each handler decides one node of one lane (the last entry of its `Chain`),
as `decide` does at the top of the plan: it moves the lane on, opens a
request for the lane alone (the other lanes go on), starts a step, or
fails the run. A block inside a lane is `blocks`' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from executors.base import Action
from workflows import executor_config, graph, hooks
from workflows.engine import children
from workflows.engine.asks import (
    Node,
    ask_options,
    digest_mismatch,
    missing_ask,
    no_fields,
    step_unknown,
    text,
    unknown_ask,
)
from workflows.engine.base import FAILED_ATTEMPT, STOP, Launch, Wait, _Stop, append_event
from workflows.engine.lanes import (
    Chain,
    Lane,
    gates_above,
    guard_paths,
    in_item,
    lane_move,
    lane_move_on,
    lane_pause,
    lane_visit,
    writes_of,
)
from workflows.engine.steps import retry_wait, start_step, step_interrupted
from workflows.guards import (
    child_entry,
    governing_gates,
    guard_entry,
    guards_from,
    still_approved,
)
from workflows.models import Run, Step
from workflows.plans import InputNode, node_fields_schema
from workflows.resume import ResumeGrant
from workflows.services import run_fail
from workflows.states import RunMode, StepStatus
from workflows.templating import render


@dataclass
class Pass:
    """What one pass over a run's lanes collects: actions to start, waits."""

    owner: str
    # This worker's steps in flight, by node path (being waited on).
    running: dict[str, Step]
    launches: list[Launch] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)


def lane_branch(
    run: Run, chain: Chain, nodes: list[Node], node: Node, path: str, scope: dict[str, Any]
) -> bool | _Stop | None:
    """Take a branch's case in a lane; None when the lane moved, else False or STOP."""
    block, _state, lane = chain[-1]
    chosen: int | None = None
    for index, case in enumerate(node["cases"]):
        try:
            holds = graph.compile_condition(case["when"]).evaluate(scope)
        except graph.ConditionMissing as exc:
            label = node.get("title") or path
            ask = missing_ask(run, node, None, exc.keys, label=label, to="decide the branch")
            lane_pause(run, block, lane, node, path, **ask)
            return False
        except graph.ConditionError as exc:
            run_fail(run=run, actor=None, node=path, error=f"{path}: {exc}")
            return STOP
        if holds:
            chosen, target = index, graph.index_of(nodes, case["next"])
            break
    else:
        default = node.get("default")
        target = graph.index_of(nodes, default) if default else lane["position"] + 1
    append_event(
        run,
        type="branch.taken",
        data={
            "node": node["id"],
            "node_path": path,
            "case": chosen,
            "next": nodes[target]["id"] if target < len(nodes) else graph.END,
        },
    )
    lane_move(lane, nodes, target)
    return None


def lane_ask(
    run: Run, chain: Chain, nodes: list[Node], node: Node, path: str, scope: dict[str, Any]
) -> None:
    """Open an approval node's or an input node's request for the lane."""
    block, _state, lane = chain[-1]
    fields: dict[str, Any]
    if node["type"] == "approval":
        after = graph.successor(nodes, lane["position"])
        guards, fields = guard_paths(guards_from(nodes, after, scope), lane), no_fields()
    else:
        guards, fields = [], node_fields_schema(InputNode.model_validate(node))
    lane_pause(
        run,
        block,
        lane,
        node,
        path,
        purpose="approval_node" if node["type"] == "approval" else "input_node",
        kind=node["type"],
        title=text(node["title"], scope),
        description=node.get("description", ""),
        fields=fields,
        assign_to=node.get("assign_to"),
        guards=guards,
        options=ask_options(node),
    )


def _gates(run: Run, chain: Chain, nodes: list[Node], lane: Lane) -> list[Node]:
    """Return the gates governing the lane's node: in its lane, else before its block."""
    gates = [nodes[i] for i in governing_gates(nodes, lane["position"])]
    if not gates:
        # At the start of its lane: guarded by a gate before the block.
        gates = gates_above(run, chain, nodes, lane["position"])
    return gates


def _approval(
    run: Run, gates: list[Node], node: Node, position: int, path: str
) -> dict[str, Any] | None:
    """Return the first of the gates' approvals recorded for the node at `path`."""
    for gate in gates:
        approved = hooks.approved_guard(
            run=run, node_id=node["id"], position=position, gate=gate["id"], node_path=path
        )
        if approved is not None:
            return approved
    return None


def _ask_gate_again(
    run: Run,
    chain: Chain,
    nodes: list[Node],
    gate: Node,
    node: Node,
    path: str,
    scope: dict[str, Any],
    *,
    reason: str,
) -> None:
    """Ask a lane's gate again for its node (no approval covers what would run now)."""
    block, _state, lane = chain[-1]
    what = node.get("action") or f"workflow {node.get('workflow')}"
    lane_pause(
        run,
        block,
        lane,
        gate,
        path,
        purpose="gate_again",
        kind="approval",
        title=text(gate["title"], scope),
        description=f"Asked again before {path} ({what}): {reason}.",
        fields=no_fields(),
        state={"gate": gate["id"]},
        assign_to=gate.get("assign_to"),
        guards=guard_paths(guards_from(nodes, lane["position"], scope), lane),
    )


def lane_action(
    run: Run,
    chain: Chain,
    nodes: list[Node],
    node: Node,
    path: str,
    scope: dict[str, Any],
    work: Pass,
) -> Launch | Wait | _Stop | None:
    """Start an action node's step in a lane, or say why not yet (None: it waits)."""
    if path in work.running:
        return None  # this worker is waiting for it
    block, _state, lane = chain[-1]
    action = executor_config.registry().get(node["action"])
    missing: set[str] = set()
    params = render(node.get("params", {}), scope, missing)
    if missing:
        label = node.get("title") or path
        lane_pause(
            run,
            block,
            lane,
            node,
            path,
            **missing_ask(run, node, action, sorted(missing), label=label),
        )
        return None
    clear = lane["clearance"]
    if (clear.get("position"), clear.get("node")) != (lane["position"], node["id"]):
        clear = {}
    gates = _gates(run, chain, nodes, lane)
    approved = _approval(run, gates, node, lane["position"], path)
    if gates and approved is None:
        reason = "no approval of this gate covers it"
        _ask_gate_again(run, chain, nodes, gates[0], node, path, scope, reason=reason)
        return None
    review = run.mode == RunMode.INTERACTIVE or (
        run.mode == RunMode.ASSISTED and action.risk == "high"
    )

    def entry() -> list[dict[str, Any]]:
        position = lane["position"]
        return [guard_entry(node=node, position=position, params=params, unresolved=[])]

    if review and not clear.get("approved"):
        lane_pause(
            run,
            block,
            lane,
            node,
            path,
            purpose="mode_gate",
            kind="approval",
            title=f"Run {node['action']} ({path})?",
            description=action.description,
            fields=no_fields(),
            state={"action": node["action"], "params": params, "risk": action.risk},
            guards=guard_paths(entry(), lane),
        )
        return None
    if approved is None and clear.get("approved"):
        approved = hooks.approved_guard(
            run=run, node_id=node["id"], position=lane["position"], node_path=path
        )
    if approved is not None:
        answered = tuple(clear.get("values") or ()) if clear.get("resume") else ()
        matches, current = still_approved(approved, node, scope, answered=answered)
        if not matches:
            # What was approved is what runs, inside blocks too.
            digest_mismatch(run, node, approved, current, path=path)
            gate = gates[0] if gates else node
            lane_pause(
                run,
                block,
                lane,
                gate,
                path,
                purpose="gate_again" if gates else "mode_gate",
                kind="approval",
                title=f"Parameters changed since approval: {path}",
                description="The parameters this step would run with differ from the ones "
                "approved. Review them again.",
                fields=no_fields(),
                state={"gate": gate["id"]} if gates else {"action": node["action"]},
                assign_to=gate.get("assign_to") if gates else None,
                guards=guard_paths(entry(), lane),
            )
            return None
    return _next_attempt(run, chain, node, path, action, params, clear, work.owner)


def _next_attempt(
    run: Run,
    chain: Chain,
    node: Node,
    path: str,
    action: type[Action],
    params: dict[str, Any],
    clear: dict[str, Any],
    owner: str,
) -> Launch | Wait | _Stop | None:
    """Start the lane step's next attempt, or wait for its backoff, or stop.

    An attempt left running by a worker that died is interrupted (retried if
    the action is idempotent or a person asked to, else its outcome is
    unknown); failed attempts are retried with backoff up to `max_attempts`.
    """
    block, _state, lane = chain[-1]
    visit = lane_visit(lane, node["id"])
    steps = list(Step.objects.filter(run=run, node_path=path, visit=visit).order_by("attempt"))
    last = steps[-1] if steps else None
    granted = False
    if last is not None and last.status in (StepStatus.RUNNING, StepStatus.UNKNOWN):
        # Left by a worker that died (this worker's own are in `running`).
        if clear.get("retry"):
            granted = True
            lane["clearance"] = {**clear, "retry": False}
        elif not action.idempotent:
            lane_unknown(run, block, lane, node, path, last)
            return None
        step_interrupted(run, last, path=path)
    if last is not None and last.status in FAILED_ATTEMPT and not granted:
        waiting = retry_wait(run, node, path, steps)
        if waiting is not None:
            return waiting
    attempt = (last.attempt + 1) if last is not None else 1
    return start_step(
        run,
        node,
        owner,
        action=action,
        params=params,
        position=lane["position"],
        visit=visit,
        attempt=attempt,
        key=f"run{run.pk}-{path}-v{visit}",
        grant=ResumeGrant.from_json(clear),
        node_path=path,
        lane=lane["path"],
    )


def lane_unknown(run: Run, block: Node, lane: Lane, node: Node, path: str, step: Step) -> None:
    """Ask whether a lane's interrupted, non-idempotent attempt happened."""
    step_unknown(run, step, {"node": node["id"], "node_path": path})
    state = {"params": step.params, "error": step.error}
    lane_pause(run, block, lane, node, path, **unknown_ask(node, step, path, state))


def lane_child(
    run: Run, chain: Chain, nodes: list[Node], node: Node, path: str, scope: dict[str, Any]
) -> bool | _Stop:
    """Start a lane's child run, wait for it, or take its outcome.

    Return True when the lane moved past the node, False while it waits
    (for its child or a person), STOP when the run failed. The lane waits
    alone: the other lanes go on, and the run is `waiting` only when no lane
    can. The child's id is kept in the lane, per visit of the node.
    """
    block, _state, lane = chain[-1]
    key = f"{node['id']}#{lane_visit(lane, node['id'])}"
    child_id = (lane.get("children") or {}).get(key)
    if child_id is None:
        return _lane_child_start(run, chain, nodes, node, path, scope, key)
    changed = children.child_outputs(run, node, child_id, path)
    if changed is None:
        return False
    if isinstance(changed, _Stop):
        return STOP
    writes_of(run, chain).update(changed)
    append_event(
        run,
        type="child.finished",
        data={
            "node": node["id"],
            "node_path": path,
            "child": child_id,
            "lane_context" if in_item(chain) else "context": changed,
        },
    )
    lane.pop("child", None)
    lane_move_on(lane, nodes)
    return True


def _lane_child_start(
    run: Run,
    chain: Chain,
    nodes: list[Node],
    node: Node,
    path: str,
    scope: dict[str, Any],
    key: str,
) -> bool | _Stop:
    """Start the lane's child (False: the lane waits for it or a person; STOP: failed)."""
    block, _state, lane = chain[-1]
    missing: set[str] = set()
    inputs = render(node.get("inputs", {}), scope, missing)
    if missing:
        label = node.get("title") or path
        ask = missing_ask(run, node, None, sorted(missing), label=label, to="start the child")
        lane_pause(run, block, lane, node, path, **ask)
        return False
    gates = _gates(run, chain, nodes, lane)
    if gates:
        # What was approved is what the child gets: its inputs, by path.
        approved = _approval(run, gates, node, lane["position"], path)
        now = child_entry(node=node, position=lane["position"], inputs=inputs)
        if approved is None or approved.get("digest") != now["digest"]:
            if approved is not None:
                digest_mismatch(run, node, approved, now["digest"], path=path)
            reason = (
                "the child's inputs changed since the gate was approved"
                if approved is not None
                else "no approval of this gate covers it"
            )
            _ask_gate_again(run, chain, nodes, gates[0], node, path, scope, reason=reason)
            return False
    problem, child_id = children.create_child(run, node, inputs, node_path=path)
    if problem:
        run_fail(run=run, actor=None, node=path, error=f"{path}: {problem}")
        return STOP
    lane.setdefault("children", {})[key] = child_id
    lane["child"] = child_id
    return False
