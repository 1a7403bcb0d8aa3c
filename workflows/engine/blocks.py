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

import copy
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
from workflows.states import TERMINAL, RunMode, RunStatus, StepStatus
from workflows.templating import render

BLOCK = "block"
MAX_ITEMS = 1000
MAX_HOPS = 1000
# decide_block's answer when the block has ended and the run moved past it.
NEXT = object()


# A lane and the lanes it is nested in, outermost first: each entry is
# (block node, block state, lane). A block inside a lane keeps its state in
# that lane (`lane["block"]`), so a nested lane's path names every level:
# `hires[1]/setup/0`, and its node `hires[1]/setup/0/hr`.
Chain = list[tuple[dict, dict, dict]]


def lane_nodes(block: dict, lane: dict) -> list[dict]:
    if block.get("type") == "parallel":
        return list(block["branches"][lane["index"]]["nodes"])
    return list(block["nodes"])


def lane_scope(run: Run, chain: Chain) -> dict:
    """Return what a lane's references and conditions read.

    The run's context and decisions, and for each map the lane is in (at
    any depth) its item under `as`, that item's outputs so far and its own
    decisions (`decisions.<gate>` of a gate in a map's body is this item's).
    """
    scope = flow.scope(run)
    decided: dict | None = None
    for block, state, lane in chain:
        if block.get("type") == "map":
            scope = {**scope, block["as"]: state["items"][lane["index"]], **lane["outputs"]}
            if lane.get("decisions"):
                decided = {**(decided or scope.get(graph.DECISIONS) or {}), **lane["decisions"]}
    if decided is not None:
        scope = {**scope, graph.DECISIONS: decided}
    return scope


def _writes(run: Run, chain: Chain) -> dict:
    """Return where a lane's outputs go: its nearest map item's, else the context."""
    for block, _state, lane in reversed(chain):
        if block.get("type") == "map":
            outputs: dict = lane["outputs"]
            return outputs
    return run.context


def _decisions_of(run: Run, chain: Chain) -> dict:
    """Return where a lane's gates' decisions go: its nearest map item's, else the run's."""
    for block, _state, lane in reversed(chain):
        if block.get("type") == "map":
            decided: dict = lane.setdefault("decisions", {})
            return decided
    run.graph = dict(run.graph or {})
    top: dict = run.graph.setdefault(graph.DECISIONS, {})
    return top


def _in_item(chain: Chain) -> bool:
    return any(block.get("type") == "map" for block, _state, _lane in chain)


def _state(run: Run) -> dict | None:
    return (run.graph or {}).get(BLOCK)


def _save(run: Run, state: dict | None) -> None:
    graph_state = dict(run.graph or {})
    if state is None:
        graph_state.pop(BLOCK, None)
    else:
        graph_state[BLOCK] = state
    run.graph = graph_state


def _new_lane(block: dict, index: int, prefix: str, *, run: Run | None = None) -> dict:
    """Return a new lane; with `run`, its visits go on from the steps already at its paths.

    A block entered again (a jump back to it) has the same lane paths as
    before: counting on from the last entry's visits keeps each step's
    (path, visit) and idempotency key its own, so an entry never takes an
    earlier entry's attempts, or its idempotency key, for its own.
    """
    path = f"{prefix}/{index}" if block["type"] == "parallel" else f"{prefix}[{index}]"
    visits: dict[str, int] = {}
    if run is not None:
        prefix_len = len(path) + 1
        done = Step.objects.filter(run=run, node_path__startswith=path + "/").values_list(
            "node_path", "visit"
        )
        for node_path, visit in done:
            node_id = node_path[prefix_len:]
            if "/" not in node_id:  # this lane's own nodes, not nested ones
                visits[node_id] = max(visits.get(node_id, 0), int(visit))
        first = lane_nodes(block, {"index": index})[0]["id"]
        if first in visits:
            visits[first] += 1  # the lane enters its first node now
    return {
        "index": index,
        "path": path,
        "position": 0,
        "status": "active",
        "visits": visits,
        "outputs": {},
        "clearance": {},
        "request": None,
    }


def _find(block: dict, state: dict, path: str, outer: Chain | None = None) -> Chain | None:
    """Return the chain of the lane at `path`, searching nested blocks too."""
    for lane in state["lanes"]:
        chain = [*(outer or []), (block, state, lane)]
        if lane["path"] == path:
            return chain
        nested = lane.get("block")
        if nested and path.startswith(lane["path"] + "/"):
            found = _find(lane_nodes(block, lane)[lane["position"]], nested, path, chain)
            if found is not None:
                return found
    return None


def _chain(run: Run, path: str | None) -> Chain | None:
    state = _state(run)
    if not state or not path or run.position >= len(run.nodes):
        return None
    return _find(run.nodes[run.position], state, path)


def _lane_paths(block: dict, state: dict, *, waiting_only: bool) -> list[str]:
    """Return the node paths of a block's lanes (at every depth) in flight or waiting."""
    paths = []
    for lane in state["lanes"]:
        nodes = lane_nodes(block, lane)
        if lane["position"] >= len(nodes):
            continue
        node = nodes[lane["position"]]
        if lane.get("block"):
            paths.extend(_lane_paths(node, lane["block"], waiting_only=waiting_only))
        elif (
            lane["status"] == "waiting"
            or lane.get("child")
            or (lane["status"] == "active" and not waiting_only)
        ):
            paths.append(f"{lane['path']}/{node['id']}")
    return paths


def active_paths(run: Run) -> list[str]:
    """Return the node paths of a block's lanes in flight or waiting, at every depth."""
    state = _state(run)
    if not state or run.position >= len(run.nodes):
        return []
    return _lane_paths(run.nodes[run.position], state, waiting_only=False)


def _start(run: Run, block: dict, chain: Chain, path: str) -> dict | None | Any:
    """Create a block's state; STOP when the run failed or paused, None when a lane paused.

    `chain` is the lane the block is in (empty at the top of the plan);
    `path` the block's node path.
    """
    state: dict[str, Any] = {"node": block["id"], "path": path, "lanes": [], "results": {}}
    entry = _lane_visit(chain[-1][2], block["id"]) if chain else flow.visit_of(run, block["id"])
    if entry > 1:
        # Entered again (a jump back to it): its lanes' node paths are those
        # of the last entry; their visits go on from there.
        state["again"] = True
    if block["type"] == "parallel":
        state["lanes"] = [
            _new_lane(block, i, path, run=run if entry > 1 else None)
            for i in range(len(block["branches"]))
        ]
        count = len(state["lanes"])
    else:
        missing: set[str] = set()
        items = render(block["items"], lane_scope(run, chain), missing)
        if missing:
            from workflows.engine.decide import _missing_fields, pause

            title = f"{block.get('title') or path}: a value is missing"
            description = "Supply " + ", ".join(sorted(missing)) + " to continue."
            fields = _missing_fields(run, block, None, sorted(missing))
            if not chain:
                pause(
                    run,
                    purpose="missing",
                    kind="input",
                    title=title,
                    description=description,
                    fields=fields,
                )
                return STOP
            outer, _state_, lane = chain[-1]
            _lane_pause(
                run,
                outer,
                lane,
                block,
                path,
                purpose="missing",
                kind="input",
                title=title,
                description=description,
                fields=fields,
            )
            return None
        if not isinstance(items, list):
            run_fail(
                run=run,
                actor=None,
                node=path,
                error=f"{path}: items is {type(items).__name__}, not a list",
            )
            return STOP
        if len(items) > MAX_ITEMS:
            run_fail(
                run=run,
                actor=None,
                node=path,
                error=f"{path}: {len(items)} items, more than {MAX_ITEMS}",
            )
            return STOP
        state["items"] = items
        state["next_item"] = 0
        count = len(items)
    append_event(
        run,
        type="block.started",
        data={"node": block["id"], "node_path": path, "kind": block["type"], "lanes": count},
    )
    return state


class _Pass:
    """What one pass over a run's lanes collects: actions to start, waits."""

    def __init__(self, owner: str, running: dict[str, Step]) -> None:
        self.owner = owner
        self.running = running
        self.launches: list[Launch] = []
        self.waits: list[float] = []


def decide_block(run: Run, block: dict, owner: str) -> Any:
    """Decide every lane of the block the run is at, and of the blocks inside them.

    Return a list of Launches (maybe empty, while this worker's actions are
    in flight), a Wait, STOP (paused or failed), or NEXT when the block
    ended and the run moved past it.
    """
    state = _state(run)
    if not state or state.get("node") != block["id"]:
        started = _start(run, block, [], block["id"])
        if started is STOP or started is None:
            return STOP
        state = started
    running = {
        step.node_path: step
        for step in Step.objects.filter(run=run, status=StepStatus.RUNNING, worker=owner).only(
            "node_path"
        )
    }
    work = _Pass(owner, running)
    done = _run_lanes(run, [], block, state, work)
    if done is STOP:
        _save(run, state)
        return STOP
    if done:
        _finish(run, block, state)
        return NEXT
    _save(run, state)
    if work.launches or running:
        return work.launches
    if work.waits:
        return Wait(min(work.waits))
    # Every lane left waits for a person: only now is the run waiting.
    waiting = _lane_paths(block, state, waiting_only=True)
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
            "title": f"{block['id']}: every branch left waits for a person or a child run",
        },
    )
    return STOP


def _run_lanes(run: Run, outer: Chain, block: dict, state: dict, work: _Pass) -> bool | Any:
    """Decide each active lane of one block; return whether the block ended, or STOP."""
    for _ in range(2):
        if block["type"] == "map":
            busy = sum(1 for lane in state["lanes"] if lane["status"] != "done")
            while busy < block.get("max_concurrency", 4) and state["next_item"] < len(
                state["items"]
            ):
                state["lanes"].append(
                    _new_lane(
                        block,
                        state["next_item"],
                        state["path"],
                        run=run if state.get("again") else None,
                    )
                )
                state["next_item"] += 1
                busy += 1
        for lane in state["lanes"]:
            if lane["status"] != "active":
                continue
            if _lane_decide(run, [*outer, (block, state, lane)], work) is STOP:
                return STOP
        if block["type"] != "map" or state["next_item"] >= len(state["items"]):
            break
    ended = all(lane["status"] == "done" for lane in state["lanes"])
    return ended and (block["type"] == "parallel" or state["next_item"] >= len(state["items"]))


def _results(block: dict, state: dict) -> dict[str, Any]:
    if block["type"] == "map" and block.get("results"):
        return {
            block["results"]: [
                state["results"].get(str(i), {}) for i in range(len(state["items"]))
            ]
        }
    return {}


def _decided(block: dict, state: dict) -> dict[str, list[dict | None]]:
    """Return a map's gates' decisions: per gate, a list in item order (None: not decided)."""
    per_item = state.get("decided") or {}
    if block["type"] != "map" or not per_item:
        return {}
    gates = sorted({gate for decided in per_item.values() for gate in decided})
    count = len(state["items"])
    return {gate: [per_item.get(str(i), {}).get(gate) for i in range(count)] for gate in gates}


def _finish(run: Run, block: dict, state: dict) -> None:
    data: dict[str, Any] = {"node": block["id"], "node_path": block["id"]}
    results = _results(block, state)
    if results:
        run.context.update(results)
        data["context"] = results
    decided = _decided(block, state)
    _save(run, None)
    if decided:
        _decisions_of(run, []).update(decided)
        data["decisions"] = decided
    append_event(run, type="block.finished", data=data)
    flow.move_on(run)


def _nested(run: Run, chain: Chain, nodes: list[dict], node: dict, path: str, work: _Pass) -> Any:
    """Decide a block inside a lane; return whether it ended (the lane moved on), or STOP."""
    _block, _state_, lane = chain[-1]
    nested = lane.get("block")
    if not nested or nested.get("node") != node["id"]:
        nested = _start(run, node, chain, path)
        if nested is STOP:
            return STOP
        if nested is None:
            return False  # the lane waits for the items
        lane["block"] = nested
    done = _run_lanes(run, chain, node, nested, work)
    if done is STOP or not done:
        return done
    results = _results(node, nested)
    data: dict[str, Any] = {"node": node["id"], "node_path": path}
    if results:
        _writes(run, chain).update(results)
        data["lane_context" if _in_item(chain) else "context"] = results
    decided = _decided(node, nested)
    if decided:
        _decisions_of(run, chain).update(decided)
        data["decisions"] = decided
    append_event(run, type="block.finished", data=data)
    lane.pop("block", None)
    _lane_move(lane, nodes, graph.successor(nodes, lane["position"]))
    return True


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
        if lane.get("decisions"):
            state.setdefault("decided", {})[str(lane["index"])] = lane["decisions"]
    append_event(run, type="lane.finished", data={"node": block["id"], "node_path": lane["path"]})


def _lane_decide(run: Run, chain: Chain, work: _Pass) -> Any:
    """Move one lane as far as it goes; STOP when the run paused or failed."""
    block, state, lane = chain[-1]
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
        scope = lane_scope(run, chain)
        if kind == "fail":
            message = str(render(node["message"], scope, set()))
            run_fail(run=run, actor=None, node=path, error=message[:2000])
            return STOP
        if kind == "branch":
            outcome = _lane_branch(run, block, state, lane, nodes, node, path, scope)
            if outcome is not None:
                return outcome
            continue
        if kind in ("parallel", "map"):
            ended = _nested(run, chain, nodes, node, path, work)
            if ended is STOP:
                return STOP
            if not ended:
                return None
            continue
        if kind in ("approval", "input"):
            _lane_ask(run, block, state, lane, nodes, node, path, scope)
            return None
        if kind == "workflow":
            moved = _lane_child(run, chain, nodes, node, path, scope)
            if moved is STOP:
                return STOP
            if not moved:
                return None
            continue
        outcome = _lane_action(run, chain, nodes, node, path, scope, work.owner, work.running)
        if outcome is STOP:
            return STOP
        if isinstance(outcome, Launch):
            work.launches.append(outcome)
            work.running[outcome.node_path] = outcome.step
        elif isinstance(outcome, Wait):
            work.waits.append(outcome.seconds)
        return None
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
    """Name each guarded action by its node path: a map's items share node ids.

    An entry of a block inside the lane already has its path within the lane.
    """
    for guard in guards:
        guard["path"] = f"{lane['path']}/{guard.get('path') or guard['node']}"
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
    chain: Chain,
    nodes: list[dict],
    node: dict,
    path: str,
    scope: dict,
    owner: str,
    running: dict,
) -> Any:
    if path in running:
        return None  # this worker is waiting for it
    block, _state_, lane = chain[-1]
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
    from workflows.guards import governing_gates

    gates = [nodes[i] for i in governing_gates(nodes, lane["position"])]
    if not gates:
        # At the start of its lane: guarded by a gate before the block.
        gates = _gates_above(run, chain, nodes, lane["position"])
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


def _lane_child(
    run: Run, chain: Chain, nodes: list[dict], node: dict, path: str, scope: dict
) -> Any:
    """Start a lane's child run, wait for it, or take its outcome.

    Return True when the lane moved past the node, False while it waits
    (for its child or a person), STOP when the run failed. The lane waits
    alone: the other lanes go on, and the run is `waiting` only when no lane
    can. The child's id is kept in the lane, per visit of the node.
    """
    from workflows.engine import children
    from workflows.guards import child_entry, governing_gates

    block, _state_, lane = chain[-1]
    key = f"{node['id']}#{_lane_visit(lane, node['id'])}"
    child_id = (lane.get("children") or {}).get(key)
    if child_id is None:
        missing: set[str] = set()
        inputs = render(node.get("inputs", {}), scope, missing)
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
                description="Supply " + ", ".join(sorted(missing)) + " to start the child.",
                fields=_missing_fields(run, node, None, sorted(missing)),
            )
            return False
        gates = [nodes[i] for i in governing_gates(nodes, lane["position"])]
        if not gates:
            gates = _gates_above(run, chain, nodes, lane["position"])
        if gates:
            # What was approved is what the child gets: its inputs, by path.
            approved = None
            for gate in gates:
                approved = hooks.approved_guard(
                    run=run,
                    node_id=node["id"],
                    position=lane["position"],
                    gate=gate["id"],
                    node_path=path,
                )
                if approved is not None:
                    break
            now = child_entry(node=node, position=lane["position"], inputs=inputs)
            if approved is None or approved.get("digest") != now["digest"]:
                if approved is not None:
                    append_event(
                        run,
                        type="approval.digest_mismatch",
                        data={
                            "node": node["id"],
                            "node_path": path,
                            "approved": approved["digest"],
                            "current": now["digest"],
                        },
                    )
                reason = (
                    "the child's inputs changed since the gate was approved"
                    if approved is not None
                    else "no approval of this gate covers it"
                )
                _lane_pause(
                    run,
                    block,
                    lane,
                    gates[0],
                    path,
                    purpose="gate_again",
                    kind="approval",
                    title=str(render(gates[0]["title"], scope, set())),
                    description=f"Asked again before {path} (workflow {node['workflow']}): "
                    f"{reason}.",
                    fields={"type": "object", "properties": {}},
                    state={"gate": gates[0]["id"]},
                    assign_to=gates[0].get("assign_to"),
                    guards=_paths(guards_from(nodes, lane["position"], scope), lane, nodes),
                )
                return False
        problem, child_id = children.create_child(run, node, inputs, node_path=path)
        if problem:
            run_fail(run=run, actor=None, node=path, error=f"{path}: {problem}")
            return STOP
        lane.setdefault("children", {})[key] = child_id
        lane["child"] = child_id
        return False
    child = Run.objects.filter(pk=child_id).only("status", "context", "error").first()
    if child is None:
        run_fail(run=run, actor=None, node=path, error=f"{path}: child run is gone")
        return STOP
    if child.status not in TERMINAL:
        return False
    if child.status != RunStatus.SUCCEEDED:
        reason = f": {child.error}" if child.error else ""
        run_fail(
            run=run,
            actor=None,
            node=path,
            error=f"{path}: child run #{child.pk} ({node['workflow']}) {child.status}{reason}"[
                :2000
            ],
        )
        return STOP
    outputs = node.get("outputs") or {}
    lacking = [name for name in outputs.values() if name not in child.context]
    if lacking:
        run_fail(
            run=run,
            actor=None,
            node=path,
            error=f"{path}: child run #{child.pk} ended without " + ", ".join(sorted(lacking)),
        )
        return STOP
    changed = {name: copy.deepcopy(child.context[outputs[name]]) for name in outputs}
    _writes(run, chain).update(changed)
    append_event(
        run,
        type="child.finished",
        data={
            "node": node["id"],
            "node_path": path,
            "child": child.pk,
            "lane_context" if _in_item(chain) else "context": changed,
        },
    )
    lane.pop("child", None)
    _lane_move(lane, nodes, graph.successor(nodes, lane["position"]))
    return True


def child_path(run: Run, child_id: int) -> str | None:
    """Return the node path of the lane (at any depth) waiting on child `child_id`."""
    state = _state(run)
    if not state or run.position >= len(run.nodes):
        return None

    def search(block: dict, block_state: dict) -> str | None:
        for lane in block_state["lanes"]:
            nodes = lane_nodes(block, lane)
            if lane["position"] >= len(nodes):
                continue
            node = nodes[lane["position"]]
            if lane.get("child") == child_id:
                return f"{lane['path']}/{node['id']}"
            if lane.get("block"):
                found = search(node, lane["block"])
                if found is not None:
                    return found
        return None

    return search(run.nodes[run.position], state)


def _gates_above(run: Run, chain: Chain, nodes: list[dict], position: int) -> list[dict]:
    """Return the gates before the blocks a lane's first actions are in, nearest first.

    Level by level outwards: a gate before the lane's block in the list
    around it, else (when that block too starts its lane) before the block
    around that, up to the top of the plan.
    """
    from workflows.guards import gates_before_lane, lane_start_reaches

    for level in range(len(chain) - 1, -1, -1):
        if level == 0:
            around, at = run.nodes, run.position
        else:
            outer, _state_, lane = chain[level - 1]
            around, at = lane_nodes(outer, lane), lane["position"]
        found = gates_before_lane(around, at, nodes, position)
        if found:
            return [around[i] for i in found]
        if not lane_start_reaches(nodes, position):
            return []
        nodes, position = around, at
    return []


# --- results and decisions ----------------------------------------------------


def _chain_of(run: Run, path: str | None) -> Chain:
    chain = _chain(run, path)
    if chain is None:
        raise KeyError(path)
    return chain


def lane_recorded(run: Run, launch: Launch, step: Step) -> tuple[dict, bool]:
    """Apply a lane step's outputs and move its lane on.

    Return the change and whether it went to a map item's outputs (the
    lane's, or those of the item it is nested in) rather than the context.
    """
    state = _state(run)
    chain = _chain_of(run, launch.lane)
    block, _state_, lane = chain[-1]
    nodes = lane_nodes(block, lane)
    in_item = _in_item(chain)
    if in_item:
        changed = {
            key: (step.output or {}).get(f) for key, f in launch.node.get("outputs", {}).items()
        }
        _writes(run, chain).update(changed)
    else:
        changed = apply_outputs(run, launch.node, step.output or {})
    _lane_move(lane, nodes, graph.successor(nodes, lane["position"]))
    _save(run, state)
    return changed, in_item


def lane_paused(run: Run, launch: Launch, step: Step, **kwargs: Any) -> None:
    """Open a request for a lane whose action asked for a value or may have run."""
    state = _state(run)
    block, _state_, lane = _chain_of(run, launch.lane)[-1]
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
    decided: dict | None = None,
) -> None:
    """Move a lane on after a person decided its request (the caller's transaction).

    `decided` is a gate's decision, readable as `decisions.<gate>`: in a
    map's item (at any depth) by that item's later nodes only, else by all.
    """
    state = _state(run)
    path = request.state.get("lane")
    chain = _chain(run, path)
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
    nodes = lane_nodes(block, lane)
    node = nodes[lane["position"]]
    purpose = request.purpose
    node_path = f"{path}/{node['id']}"
    lane["status"], lane["request"] = "active", None
    if decided is not None:
        _decisions_of(run, chain)[node["id"]] = decided
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
        target_values = _writes(run, chain)
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
