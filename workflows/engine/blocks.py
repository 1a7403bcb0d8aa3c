"""Blocks: a `parallel` node's branches and a `map` node's items, as lanes.

A block runs its lists as lanes (`lanes`), each with its own position,
visits, clearance and (in a map) its item and outputs, all kept in
`run.graph["block"]` and saved with the run in every commit. The run keeps
one position (the block node) and one lease; the worker launches the
actions of every lane that can go on, several at once, and commits each
result as it comes (`lane_results`).

A gate, an input or a missing value inside a lane pauses that lane only
(its request names the node path, `setup/1/badge`, `laptops[2]/order`);
the run is `waiting` only when no lane can go on and no action is in
flight. A failing lane fails the run: the other lanes' actions in flight
are killed at their next heartbeat and recorded as cancelled.

A step in flight belongs to the worker named on it: this worker's own are
being waited on; another's were left by a worker that died, and are
retried (idempotent) or fenced with an unknown-outcome request, as at the
top of the plan. Completed steps are never run again: a lane only moves on.

Here: starting a block (a parallel's branches, a map's items), the passes
over its lanes, a lane's walk from node to node (each node is
`lane_nodes`' to decide, a block inside the lane is started and driven
here, recursively) and the block's end.
"""

from __future__ import annotations

from typing import Any

from workflows.engine import flow
from workflows.engine.asks import Node, missing_ask, pause
from workflows.engine.base import NEXT, STOP, Launch, Wait, _Next, _Stop, append_event
from workflows.engine.lane_nodes import Pass, lane_action, lane_ask, lane_branch, lane_child
from workflows.engine.lanes import (
    BlockState,
    Chain,
    Lane,
    block_save,
    block_state,
    decisions_of,
    in_item,
    lane_move_on,
    lane_nodes,
    lane_paths,
    lane_pause,
    lane_scope,
    lane_visit,
    new_lane,
    writes_of,
)
from workflows.models import Run, Step
from workflows.services import run_fail, set_status
from workflows.states import RunStatus, StepStatus
from workflows.templating import render

MAX_ITEMS = 1000
MAX_HOPS = 1000


def decide_block(run: Run, block: Node, owner: str) -> list[Launch] | Wait | _Stop | _Next:
    """Decide every lane of the block the run is at, and of the blocks inside them.

    Return a list of Launches (maybe empty, while this worker's actions are
    in flight), a Wait, STOP (paused or failed), or NEXT when the block
    ended and the run moved past it.
    """
    state = block_state(run)
    if not state or state.get("node") != block["id"]:
        started = _start(run, block, [], block["id"])
        if isinstance(started, _Stop) or started is None:
            return STOP
        state = started
    running = {
        step.node_path: step
        for step in Step.objects.filter(run=run, status=StepStatus.RUNNING, worker=owner).only(
            "node_path"
        )
    }
    work = Pass(owner, running)
    done = _run_lanes(run, [], block, state, work)
    if isinstance(done, _Stop):
        block_save(run, state)
        return STOP
    if done:
        _finish(run, block, state)
        return NEXT
    block_save(run, state)
    if work.launches or running:
        return work.launches
    if work.waits:
        return Wait(min(work.waits))
    # Every lane left waits for a person: only now is the run waiting.
    waiting = lane_paths(block, state, waiting_only=True)
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


def _start(run: Run, block: Node, chain: Chain, path: str) -> BlockState | _Stop | None:
    """Create a block's state; STOP when the run failed or paused, None when a lane paused.

    `chain` is the lane the block is in (empty at the top of the plan);
    `path` the block's node path.
    """
    state = BlockState(node=block["id"], path=path, lanes=[], results={})
    entry = lane_visit(chain[-1][2], block["id"]) if chain else flow.visit_of(run, block["id"])
    if entry > 1:
        # Entered again (a jump back to it): its lanes' node paths are those
        # of the last entry; their visits go on from there.
        state["again"] = True
    if block["type"] == "parallel":
        state["lanes"] = [
            new_lane(block, i, path, run=run if entry > 1 else None)
            for i in range(len(block["branches"]))
        ]
        count = len(state["lanes"])
    else:
        missing: set[str] = set()
        items = render(block["items"], lane_scope(run, chain), missing)
        if missing:
            label = block.get("title") or path
            ask = missing_ask(run, block, None, sorted(missing), label=label)
            if not chain:
                pause(run, **ask)
                return STOP
            outer, _state, lane = chain[-1]
            lane_pause(run, outer, lane, block, path, **ask)
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


def _run_lanes(run: Run, outer: Chain, block: Node, state: BlockState, work: Pass) -> bool | _Stop:
    """Decide each active lane of one block; return whether the block ended, or STOP."""
    for _ in range(2):
        if block["type"] == "map":
            busy = sum(1 for lane in state["lanes"] if lane["status"] != "done")
            while busy < block.get("max_concurrency", 4) and state["next_item"] < len(
                state["items"]
            ):
                state["lanes"].append(
                    new_lane(
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
            if isinstance(_lane_decide(run, [*outer, (block, state, lane)], work), _Stop):
                return STOP
        if block["type"] != "map" or state["next_item"] >= len(state["items"]):
            break
    ended = all(lane["status"] == "done" for lane in state["lanes"])
    return ended and (block["type"] == "parallel" or state["next_item"] >= len(state["items"]))


def _results(block: Node, state: BlockState) -> dict[str, Any]:
    """Return what a finished map gives its `results` key: its items' outputs in order."""
    if block["type"] == "map" and block.get("results"):
        return {
            block["results"]: [
                state["results"].get(str(i), {}) for i in range(len(state["items"]))
            ]
        }
    return {}


def _decided(block: Node, state: BlockState) -> dict[str, list[dict[str, Any] | None]]:
    """Return a map's gates' decisions: per gate, a list in item order (None: not decided)."""
    per_item = state.get("decided") or {}
    if block["type"] != "map" or not per_item:
        return {}
    gates = sorted({gate for decided in per_item.values() for gate in decided})
    count = len(state["items"])
    return {gate: [per_item.get(str(i), {}).get(gate) for i in range(count)] for gate in gates}


def _finish(run: Run, block: Node, state: BlockState) -> None:
    """End the block at the top of the plan: its results, decisions, and the run moves on."""
    data: dict[str, Any] = {"node": block["id"], "node_path": block["id"]}
    results = _results(block, state)
    if results:
        run.context.update(results)
        data["context"] = results
    decided = _decided(block, state)
    block_save(run, None)
    if decided:
        decisions_of(run, []).update(decided)
        data["decisions"] = decided
    append_event(run, type="block.finished", data=data)
    flow.move_on(run)


def _nested(
    run: Run, chain: Chain, nodes: list[Node], node: Node, path: str, work: Pass
) -> bool | _Stop:
    """Decide a block inside a lane; return whether it ended (the lane moved on), or STOP."""
    _block, _state, lane = chain[-1]
    nested = lane.get("block")
    if not nested or nested.get("node") != node["id"]:
        started = _start(run, node, chain, path)
        if isinstance(started, _Stop):
            return STOP
        if started is None:
            return False  # the lane waits for the items
        nested = lane["block"] = started
    done = _run_lanes(run, chain, node, nested, work)
    if isinstance(done, _Stop) or not done:
        return done
    results = _results(node, nested)
    data: dict[str, Any] = {"node": node["id"], "node_path": path}
    if results:
        writes_of(run, chain).update(results)
        data["lane_context" if in_item(chain) else "context"] = results
    decided = _decided(node, nested)
    if decided:
        decisions_of(run, chain).update(decided)
        data["decisions"] = decided
    append_event(run, type="block.finished", data=data)
    lane.pop("block", None)
    lane_move_on(lane, nodes)
    return True


def _lane_done(run: Run, block: Node, state: BlockState, lane: Lane) -> None:
    lane["status"] = "done"
    if block["type"] == "map":
        state["results"][str(lane["index"])] = lane["outputs"]
        if lane.get("decisions"):
            state.setdefault("decided", {})[str(lane["index"])] = lane["decisions"]
    append_event(run, type="lane.finished", data={"node": block["id"], "node_path": lane["path"]})


def _lane_decide(run: Run, chain: Chain, work: Pass) -> _Stop | None:
    """Move one lane as far as it goes; STOP when the run paused or failed."""
    block, state, lane = chain[-1]
    nodes = lane_nodes(block, lane["index"])
    for _ in range(MAX_HOPS):
        if lane["position"] >= len(nodes):
            _lane_done(run, block, state, lane)
            return None
        node = nodes[lane["position"]]
        path = f"{lane['path']}/{node['id']}"
        if flow.over_visits(run, node, lane_visit(lane, node["id"]), path):
            return STOP
        kind = node.get("type", "action")
        scope = lane_scope(run, chain)
        if kind == "fail":
            flow.fail_node(run, node, scope, path)
            return STOP
        if kind == "branch":
            taken = lane_branch(run, chain, nodes, node, path, scope)
            if isinstance(taken, _Stop):
                return STOP
            if taken is not None:
                return None  # the lane waits for a missing value
            continue
        if kind in ("parallel", "map"):
            ended = _nested(run, chain, nodes, node, path, work)
            if isinstance(ended, _Stop):
                return STOP
            if not ended:
                return None
            continue
        if kind in ("approval", "input"):
            lane_ask(run, chain, nodes, node, path, scope)
            return None
        if kind == "workflow":
            moved = lane_child(run, chain, nodes, node, path, scope)
            if isinstance(moved, _Stop):
                return STOP
            if not moved:
                return None
            continue
        outcome = lane_action(run, chain, nodes, node, path, scope, work)
        if isinstance(outcome, _Stop):
            return STOP
        if isinstance(outcome, Launch):
            work.launches.append(outcome)
            if outcome.step is not None:
                work.running[outcome.node_path] = outcome.step
        elif isinstance(outcome, Wait):
            work.waits.append(outcome.seconds)
        return None
    run_fail(run=run, actor=None, node=lane["path"], error="too many branches in one move")
    return STOP
