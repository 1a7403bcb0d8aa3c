"""Blocks: a `parallel` node's branches and a `map` node's items, as lanes.

A block runs its lists as lanes, each with its own position, visits,
clearance and (in a map) its item and outputs, all kept in
`run.graph["block"]` and saved with the run in every commit. The run keeps
one position (the block node) and one lease; the worker launches the
actions of every lane that can go on, several at once, and commits each
result as it comes.

A gate, an input or a missing value inside a lane pauses that lane only
(its request names the node path, `setup/1/badge`, `laptops[2]/order`);
the run is `waiting` only when no lane can go on and no action is in
flight. A failing lane fails the run: the other lanes' actions in flight
are killed at their next heartbeat and recorded as cancelled.

A step in flight belongs to the worker named on it: this worker's own are
being waited on; another's were left by a worker that died, and are
retried (idempotent) or fenced with an unknown-outcome request, as at the
top of the plan. Completed steps are never run again: a lane only moves on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from workflows import executor_config, graph, hooks
from workflows.engine import flow
from workflows.engine.base import FAILED_ATTEMPT, STOP, Launch, Wait, append_event
from workflows.guards import guard_entry, guards_from, still_approved
from workflows.models import Run, Step
from workflows.plans import InputNode, PlanError, PlanInvalid, node_fields_schema
from workflows.resume import ResumeGrant
from workflows.services import apply_outputs, merge_values, run_fail, set_status
from workflows.states import RunMode, RunStatus, StepStatus
from workflows.templating import render

BLOCK = "block"
MAX_ITEMS = 1000
MAX_HOPS = 1000
# decide_block's answer when the block has ended and the run moved past it.
NEXT = object()


def lane_nodes(block: dict, lane: dict) -> list[dict]:
    if block.get("type") == "parallel":
        return list(block["branches"][lane["index"]]["nodes"])
    return list(block["nodes"])


def lane_scope(run: Run, block: dict, state: dict, lane: dict) -> dict:
    """Return what a lane's references and conditions read."""
    base = flow.scope(run)
    if block.get("type") != "map":
        return base
    return {**base, block["as"]: state["items"][lane["index"]], **lane["outputs"]}


def _state(run: Run) -> dict | None:
    return (run.graph or {}).get(BLOCK)


def _save(run: Run, state: dict | None) -> None:
    graph_state = dict(run.graph or {})
    if state is None:
        graph_state.pop(BLOCK, None)
    else:
        graph_state[BLOCK] = state
    run.graph = graph_state


def _new_lane(block: dict, index: int) -> dict:
    path = f"{block['id']}/{index}" if block["type"] == "parallel" else f"{block['id']}[{index}]"
    return {
        "index": index,
        "path": path,
        "position": 0,
        "status": "active",
        "visits": {},
        "outputs": {},
        "clearance": {},
        "request": None,
    }


def _lane(state: dict, path: str) -> dict:
    for lane in state["lanes"]:
        if lane["path"] == path:
            return lane
    raise KeyError(path)


def active_paths(run: Run) -> list[str]:
    """Return the node paths of a block's lanes in flight or waiting."""
    state = _state(run)
    if not state:
        return []
    block = run.nodes[run.position] if run.position < len(run.nodes) else {}
    paths = []
    for lane in state["lanes"]:
        if lane["status"] == "done":
            continue
        nodes = lane_nodes(block, lane)
        if lane["position"] < len(nodes):
            paths.append(f"{lane['path']}/{nodes[lane['position']]['id']}")
    return paths


def _start(run: Run, block: dict) -> dict | Any:
    """Create the block's state; STOP when the run paused or failed instead."""
    state: dict[str, Any] = {"node": block["id"], "lanes": [], "results": {}}
    if block["type"] == "parallel":
        state["lanes"] = [_new_lane(block, i) for i in range(len(block["branches"]))]
        count = len(state["lanes"])
    else:
        missing: set[str] = set()
        items = render(block["items"], flow.scope(run), missing)
        if missing:
            from workflows.engine.decide import _missing_fields, pause

            pause(
                run,
                purpose="missing",
                kind="input",
                title=f"{block.get('title') or block['id']}: a value is missing",
                description="Supply " + ", ".join(sorted(missing)) + " to continue.",
                fields=_missing_fields(run, block, None, sorted(missing)),
            )
            return STOP
        if not isinstance(items, list):
            run_fail(
                run=run,
                actor=None,
                node=block["id"],
                error=f"{block['id']}: items is {type(items).__name__}, not a list",
            )
            return STOP
        if len(items) > MAX_ITEMS:
            run_fail(
                run=run,
                actor=None,
                node=block["id"],
                error=f"{block['id']}: {len(items)} items, more than {MAX_ITEMS}",
            )
            return STOP
        state["items"] = items
        state["next_item"] = 0
        count = len(items)
    append_event(
        run,
        type="block.started",
        data={
            "node": block["id"],
            "node_path": block["id"],
            "kind": block["type"],
            "lanes": count,
        },
    )
    return state


def decide_block(run: Run, block: dict, owner: str) -> Any:
    """Decide every lane of the block the run is at.

    Return a list of Launches (maybe empty, while this worker's actions are
    in flight), a Wait, STOP (paused or failed), or NEXT when the block
    ended and the run moved past it.
    """
    state = _state(run)
    if not state or state.get("node") != block["id"]:
        started = _start(run, block)
        if started is STOP:
            return STOP
        state = started
    running = {
        step.node_path: step
        for step in Step.objects.filter(run=run, status=StepStatus.RUNNING, worker=owner).only(
            "node_path"
        )
    }
    launches: list[Launch] = []
    waits: list[float] = []
    for _ in range(2):
        if block["type"] == "map":
            busy = sum(1 for lane in state["lanes"] if lane["status"] != "done")
            while busy < block.get("max_concurrency", 4) and state["next_item"] < len(
                state["items"]
            ):
                state["lanes"].append(_new_lane(block, state["next_item"]))
                state["next_item"] += 1
                busy += 1
        for lane in state["lanes"]:
            if lane["status"] != "active":
                continue
            outcome = _lane_decide(run, block, state, lane, owner, running)
            if outcome is STOP:
                _save(run, state)
                return STOP
            if isinstance(outcome, Launch):
                launches.append(outcome)
                running[outcome.node_path] = outcome.step
            elif isinstance(outcome, Wait):
                waits.append(outcome.seconds)
        if block["type"] != "map" or state["next_item"] >= len(state["items"]):
            break
    done = all(lane["status"] == "done" for lane in state["lanes"])
    if done and (block["type"] == "parallel" or state["next_item"] >= len(state["items"])):
        _finish(run, block, state)
        return NEXT
    _save(run, state)
    if launches or running:
        return launches
    if waits:
        return Wait(min(waits))
    # Every lane left waits for a person: only now is the run waiting.
    waiting = [
        f"{lane['path']}/{lane_nodes(block, lane)[lane['position']]['id']}"
        for lane in state["lanes"]
        if lane["status"] == "waiting"
    ]
    set_status(run, RunStatus.WAITING)
    append_event(
        run,
        type="run.paused",
        data={
            "node": block["id"],
            "purpose": "block",
            "kind": "block",
            "request": None,
            "waiting": waiting,
            "title": f"{block['id']}: every branch left waits for a person",
        },
    )
    return STOP


def _finish(run: Run, block: dict, state: dict) -> None:
    data: dict[str, Any] = {"node": block["id"], "node_path": block["id"]}
    if block["type"] == "map" and block.get("results"):
        results = [state["results"].get(str(i), {}) for i in range(len(state["items"]))]
        run.context[block["results"]] = results
        data["context"] = {block["results"]: results}
    append_event(run, type="block.finished", data=data)
    _save(run, None)
    flow.move_on(run)


def _lane_move(lane: dict, nodes: list[dict], target: int) -> None:
    lane["position"] = target
    lane["clearance"] = {}
    if target < len(nodes):
        node_id = nodes[target]["id"]
        first = 1 if target == 0 else 0
        lane["visits"][node_id] = lane["visits"].get(node_id, first) + 1


def _lane_visit(lane: dict, node_id: str) -> int:
    return int(lane["visits"].get(node_id, 1))


def _lane_done(run: Run, block: dict, state: dict, lane: dict) -> None:
    lane["status"] = "done"
    if block["type"] == "map":
        state["results"][str(lane["index"])] = lane["outputs"]
    append_event(run, type="lane.finished", data={"node": block["id"], "node_path": lane["path"]})


def _lane_decide(run: Run, block: dict, state: dict, lane: dict, owner: str, running: dict) -> Any:
    nodes = lane_nodes(block, lane)
    for _ in range(MAX_HOPS):
        if lane["position"] >= len(nodes):
            _lane_done(run, block, state, lane)
            return None
        node = nodes[lane["position"]]
        path = f"{lane['path']}/{node['id']}"
        limit = node.get("max_visits")
        if limit is not None and _lane_visit(lane, node["id"]) > limit:
            run_fail(
                run=run,
                actor=None,
                node=path,
                error=f"{path}: entered more than max_visits ({limit}) times",
            )
            return STOP
        kind = node.get("type", "action")
        scope = lane_scope(run, block, state, lane)
        if kind == "fail":
            message = str(render(node["message"], scope, set()))
            run_fail(run=run, actor=None, node=path, error=message[:2000])
            return STOP
        if kind == "branch":
            outcome = _lane_branch(run, block, state, lane, nodes, node, path, scope)
            if outcome is not None:
                return outcome
            continue
        if kind in ("approval", "input"):
            _lane_ask(run, block, state, lane, nodes, node, path, scope)
            return None
        return _lane_action(run, block, state, lane, nodes, node, path, scope, owner, running)
    run_fail(run=run, actor=None, node=lane["path"], error="too many branches in one move")
    return STOP


def _lane_branch(
    run: Run,
    block: dict,
    state: dict,
    lane: dict,
    nodes: list[dict],
    node: dict,
    path: str,
    scope: dict,
) -> Any:
    chosen: int | None = None
    for index, case in enumerate(node["cases"]):
        try:
            holds = graph.compile_condition(case["when"]).evaluate(scope)
        except graph.ConditionMissing as exc:
            _lane_pause(
                run,
                block,
                lane,
                node,
                path,
                purpose="missing",
                kind="input",
                title=f"{node.get('title') or path}: a value is missing",
                fields={
                    "type": "object",
                    "properties": {key: {"type": "string"} for key in exc.keys},
                    "required": list(exc.keys),
                },
            )
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
    _lane_move(lane, nodes, target)
    return None


def _lane_ask(
    run: Run,
    block: dict,
    state: dict,
    lane: dict,
    nodes: list[dict],
    node: dict,
    path: str,
    scope: dict,
) -> None:
    options = {
        key: node[key]
        for key in ("quorum", "due_in_s", "on_timeout", "escalate_to")
        if node.get(key) is not None
    }
    if node["type"] == "approval":
        guards = _paths(
            guards_from(nodes, graph.successor(nodes, lane["position"]), scope), lane, nodes
        )
        fields: dict = {"type": "object", "properties": {}}
    else:
        guards, fields = [], node_fields_schema(InputNode.model_validate(node))
    _lane_pause(
        run,
        block,
        lane,
        node,
        path,
        purpose="approval_node" if node["type"] == "approval" else "input_node",
        kind=node["type"],
        title=str(render(node["title"], scope, set())),
        description=node.get("description", ""),
        fields=fields,
        assign_to=node.get("assign_to"),
        guards=guards,
        options=options,
    )


def _paths(guards: list[dict], lane: dict, nodes: list[dict]) -> list[dict]:
    """Name each guarded action by its node path: a map's items share node ids."""
    for guard in guards:
        guard["path"] = f"{lane['path']}/{guard['node']}"
    return guards


def _lane_pause(
    run: Run,
    block: dict,
    lane: dict,
    node: dict,
    path: str,
    *,
    purpose: str,
    kind: str,
    title: str,
    fields: dict,
    description: str = "",
    state: dict | None = None,
    step: Step | None = None,
    assign_to: str | None = None,
    guards: list[dict] | None = None,
    options: dict | None = None,
) -> None:
    """Open a request for one lane; the other lanes go on."""
    request = hooks.open_request(
        run=run,
        step=step,
        node_id=node["id"],
        node_path=path,
        position=lane["position"],
        kind=kind,
        purpose=purpose,
        title=title[:300],
        description=description,
        fields=fields,
        state={**(state or {}), "lane": lane["path"], "block": block["id"]},
        assign_to=assign_to,
        guards=guards or [],
        options=options or {},
    )
    lane["status"], lane["request"] = "waiting", request.pk
    append_event(
        run,
        type="node.waiting",
        data={
            "request": request.pk,
            "kind": kind,
            "purpose": purpose,
            "node": node["id"],
            "node_path": path,
            "title": title,
            "fields": fields,
            "step": step.pk if step else None,
            "digest": getattr(request, "digest", ""),
        },
    )


def _lane_action(
    run: Run,
    block: dict,
    state: dict,
    lane: dict,
    nodes: list[dict],
    node: dict,
    path: str,
    scope: dict,
    owner: str,
    running: dict,
) -> Any:
    if path in running:
        return None  # this worker is waiting for it
    action = executor_config.registry().get(node["action"])
    missing: set[str] = set()
    params = render(node.get("params", {}), scope, missing)
    if missing:
        from workflows.engine.decide import _missing_fields

        _lane_pause(
            run,
            block,
            lane,
            node,
            path,
            purpose="missing",
            kind="input",
            title=f"{node.get('title') or path}: a value is missing",
            description="Supply " + ", ".join(sorted(missing)) + " to continue.",
            fields=_missing_fields(run, node, action, sorted(missing)),
        )
        return None
    clear = lane["clearance"]
    if (clear.get("position"), clear.get("node")) != (lane["position"], node["id"]):
        clear = {}
    from workflows.guards import gates_before_lane, governing_gates

    gates = [nodes[i] for i in governing_gates(nodes, lane["position"])]
    if not gates:
        # At the start of its lane: guarded by a gate before the block.
        gates = [
            run.nodes[i]
            for i in gates_before_lane(run.nodes, run.position, nodes, lane["position"])
        ]
    approved = None
    for gate in gates:
        approved = hooks.approved_guard(
            run=run, node_id=node["id"], position=lane["position"], gate=gate["id"], node_path=path
        )
        if approved is not None:
            break
    if gates and approved is None:
        _lane_pause(
            run,
            block,
            lane,
            gates[0],
            path,
            purpose="gate_again",
            kind="approval",
            title=str(render(gates[0]["title"], scope, set())),
            description=f"Asked again before {path} ({node['action']}): no approval of this "
            "gate covers it.",
            fields={"type": "object", "properties": {}},
            state={"gate": gates[0]["id"]},
            assign_to=gates[0].get("assign_to"),
            guards=_paths(guards_from(nodes, lane["position"], scope), lane, nodes),
        )
        return None
    review = run.mode == RunMode.INTERACTIVE or (
        run.mode == RunMode.ASSISTED and action.risk == "high"
    )
    if review and not clear.get("approved"):
        _lane_pause(
            run,
            block,
            lane,
            node,
            path,
            purpose="mode_gate",
            kind="approval",
            title=f"Run {node['action']} ({path})?",
            description=action.description,
            fields={"type": "object", "properties": {}},
            state={"action": node["action"], "params": params, "risk": action.risk},
            guards=_paths(
                [guard_entry(node=node, position=lane["position"], params=params, unresolved=[])],
                lane,
                nodes,
            ),
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
            append_event(
                run,
                type="approval.digest_mismatch",
                data={
                    "node": node["id"],
                    "node_path": path,
                    "approved": approved["digest"],
                    "current": current,
                },
            )
            gate = gates[0] if gates else node
            _lane_pause(
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
                fields={"type": "object", "properties": {}},
                state={"gate": gate["id"]} if gates else {"action": node["action"]},
                assign_to=gate.get("assign_to") if gates else None,
                guards=_paths(
                    [
                        guard_entry(
                            node=node, position=lane["position"], params=params, unresolved=[]
                        )
                    ],
                    lane,
                    nodes,
                ),
            )
            return None
    visit = _lane_visit(lane, node["id"])
    steps = list(Step.objects.filter(run=run, node_path=path, visit=visit).order_by("attempt"))
    last = steps[-1] if steps else None
    granted = False
    if last is not None and last.status in (StepStatus.RUNNING, StepStatus.UNKNOWN):
        # Left by a worker that died (this worker's own are in `running`).
        if clear.get("retry"):
            granted = True
            lane["clearance"] = {**clear, "retry": False}
        elif not action.idempotent:
            _lane_unknown(run, block, lane, node, path, last)
            return None
        last.status = StepStatus.INTERRUPTED
        last.error = last.error or "the worker stopped while the step ran"
        last.finished_at = last.finished_at or timezone.now()
        last.save()
        append_event(
            run,
            type="step.interrupted",
            data={
                "step": last.pk,
                "node": node["id"],
                "node_path": path,
                "attempt": last.attempt,
                "status": last.status,
                "error": last.error,
            },
        )
    failures = sum(1 for s in steps if s.status in FAILED_ATTEMPT)
    retry = node.get("retry") or {}
    if last is not None and last.status in FAILED_ATTEMPT and not granted:
        if failures >= int(retry.get("max_attempts", 1)):
            run_fail(
                run=run,
                actor=None,
                node=path,
                error=f"{path}: {last.error or last.status} "
                f"(after {failures} attempt{'s' if failures > 1 else ''})",
            )
            return STOP
        backoff = float(retry.get("backoff_s", 1.0)) * (2 ** (failures - 1))
        due = (last.finished_at or timezone.now()) + timedelta(seconds=backoff)
        wait = (due - timezone.now()).total_seconds()
        if wait > 0:
            return Wait(wait)
    attempt = (last.attempt + 1) if last is not None else 1
    from workflows.engine.decide import start_step

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


def _lane_unknown(run: Run, block: dict, lane: dict, node: dict, path: str, step: Step) -> None:
    from workflows.engine.decide import _plain_schema

    if step.status != StepStatus.UNKNOWN:
        step.status = StepStatus.UNKNOWN
        step.error = step.error or "the worker stopped while this step ran"
        step.save()
        append_event(
            run,
            type="step.outcome_unknown",
            data={
                "step": step.pk,
                "node": node["id"],
                "node_path": path,
                "attempt": step.attempt,
                "error": step.error,
            },
        )
    action = executor_config.registry().get(node["action"])
    properties = action.Output.model_json_schema().get("properties", {})
    outputs = {
        field: _plain_schema(properties.get(field, {"type": "string"}))
        for field in node.get("outputs", {}).values()
    }
    _lane_pause(
        run,
        block,
        lane,
        node,
        path,
        purpose="unknown_outcome",
        kind="unknown_outcome",
        step=step,
        title=f"Did {node['action']} ({path}) happen?",
        description=f"{node['action']} is not idempotent and its attempt {step.attempt} "
        "was interrupted. Check the system, then retry the step, mark it done "
        "(giving its outputs) or fail the run.",
        fields={"type": "object", "properties": outputs, "required": []},
        state={"params": step.params, "error": step.error},
    )


# --- results and decisions ----------------------------------------------------


def lane_recorded(run: Run, launch: Launch, step: Step) -> dict:
    """Apply a lane step's outputs and move its lane on; return the context change."""
    state = _state(run)
    block = run.nodes[run.position]
    lane = _lane(state, launch.lane)
    nodes = lane_nodes(block, lane)
    if block["type"] == "map":
        changed = {
            key: (step.output or {}).get(f) for key, f in launch.node.get("outputs", {}).items()
        }
        lane["outputs"].update(changed)
    else:
        changed = apply_outputs(run, launch.node, step.output or {})
    _lane_move(lane, nodes, graph.successor(nodes, lane["position"]))
    _save(run, state)
    return changed


def lane_paused(run: Run, launch: Launch, step: Step, **kwargs: Any) -> None:
    """Open a request for a lane whose action asked for a value or may have run."""
    state = _state(run)
    block = run.nodes[run.position]
    lane = _lane(state, launch.lane)
    if kwargs.pop("unknown", False):
        _lane_unknown(run, block, lane, launch.node, launch.node_path, step)
    else:
        _lane_pause(run, block, lane, launch.node, launch.node_path, step=step, **kwargs)
    _save(run, state)


def lane_resume(
    *,
    run: Run,
    actor: Any,
    request: Any,
    decision: str,
    values: dict,
    comment: str,
    resolution: str,
) -> None:
    """Move a lane on after a person decided its request (the caller's transaction)."""
    state = _state(run)
    path = request.state.get("lane")
    lane = None
    if state and run.position < len(run.nodes):
        try:
            lane = _lane(state, path)
        except KeyError:
            lane = None
    if lane is None or lane["status"] != "waiting" or lane["request"] != request.pk:
        raise PlanInvalid(
            [PlanError(request.node_id, "node", "the run is no longer at this node")]
        )
    block = run.nodes[run.position]
    nodes = lane_nodes(block, lane)
    node = nodes[lane["position"]]
    purpose = request.purpose
    node_path = f"{path}/{node['id']}"
    lane["status"], lane["request"] = "active", None
    if decision == "reject":
        target = (
            graph.reject_target(nodes, lane["position"]) if purpose == "approval_node" else None
        )
        if target is None:
            who = actor.get_username() if actor is not None else "the system"
            run_fail(run=run, actor=actor, node=node_path, error=f"rejected by {who}: {comment}")
            return
        _lane_move(lane, nodes, target)
    else:
        target_values = lane["outputs"] if block["type"] == "map" else run.context
        clear = lane["clearance"]
        if (clear.get("position"), clear.get("node")) != (lane["position"], node["id"]):
            clear = {"node": node["id"], "position": lane["position"]}
        if purpose in ("approval_node", "input_node"):
            merge_values(target_values, values)
            _lane_move(lane, nodes, graph.successor(nodes, lane["position"]))
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
            _lane_move(lane, nodes, graph.successor(nodes, lane["position"]))
            clear = lane["clearance"]
        lane["clearance"] = clear
    _save(run, state)
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
        from django.db import transaction

        from workflows.services import enqueue_advance

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
