"""A block's lanes: their state, where they are, what they read and write.

A `parallel` node runs each branch as a lane, a `map` node each item. A
lane has its own position, visits, clearance and (in a map) its item's
outputs and decisions; a block's state (`BlockState`) holds its lanes and is
kept in `run.graph["block"]`, saved with the run in every commit. A block
inside a lane keeps its state in that lane (`lane["block"]`), so a lane is
found by its path through every level (`hires[1]/setup/0`), and its node by
the lane's path and the node's id (`hires[1]/setup/0/hr`).

This module is the machinery every part of a block shares; `lane_nodes`
decides a lane's nodes, `blocks` drives the lanes of a block, and
`lane_results` records what happened in a lane. Imports go that way only.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, Unpack

from workflows import graph
from workflows.engine import flow
from workflows.engine.asks import Ask, Node, request_open
from workflows.guards import gates_before_lane, lane_start_reaches
from workflows.models import Run, Step

BLOCK = "block"


class Lane(TypedDict):
    """One branch of a `parallel` node or one item of a `map` node."""

    index: int
    path: str
    position: int
    status: Literal["active", "waiting", "done"]
    # Entries into each of the lane's nodes (node id -> visit).
    visits: dict[str, int]
    # A map item's outputs so far (empty in a parallel branch).
    outputs: dict[str, Any]
    # What a person granted the lane's current node (a ResumeGrant's JSON).
    clearance: dict[str, Any]
    # The open request the lane waits on.
    request: int | None
    # The block the lane is at, when its current node is one.
    block: NotRequired[BlockState]
    # The child run the lane waits on, and each visit's child ("<node>#<visit>").
    child: NotRequired[int]
    children: NotRequired[dict[str, int]]
    # A map item's gates' decisions (`decisions.<gate>` in the item).
    decisions: NotRequired[dict[str, Any]]


class BlockState(TypedDict):
    """A block's lanes while the run (or the lane around it) is at the block."""

    node: str
    path: str
    lanes: list[Lane]
    # A map's finished items' outputs and decisions, by item index.
    results: dict[str, dict[str, Any]]
    decided: NotRequired[dict[str, dict[str, Any]]]
    # Entered again (a jump back to it): lane visits go on from the last entry.
    again: NotRequired[bool]
    # A map's items, and the next one to give a lane.
    items: NotRequired[list[Any]]
    next_item: NotRequired[int]


# A lane and the lanes it is nested in, outermost first: each entry is
# (block node, block state, lane).
Chain = list[tuple[Node, BlockState, Lane]]


def lane_nodes(block: Node, index: int) -> list[Node]:
    """Return the nodes of lane `index` of a block: its branch's, or the map's body."""
    if block.get("type") == "parallel":
        return list(block["branches"][index]["nodes"])
    return list(block["nodes"])


def lane_scope(run: Run, chain: Chain) -> dict[str, Any]:
    """Return what a lane's references and conditions read.

    The run's context and decisions, and for each map the lane is in (at
    any depth) its item under `as`, that item's outputs so far and its own
    decisions (`decisions.<gate>` of a gate in a map's body is this item's).
    """
    scope = flow.scope(run)
    decided: dict[str, Any] | None = None
    for block, state, lane in chain:
        if block.get("type") == "map":
            scope = {**scope, block["as"]: state["items"][lane["index"]], **lane["outputs"]}
            if lane.get("decisions"):
                decided = {**(decided or scope.get(graph.DECISIONS) or {}), **lane["decisions"]}
    if decided is not None:
        scope = {**scope, graph.DECISIONS: decided}
    return scope


def writes_of(run: Run, chain: Chain) -> dict[str, Any]:
    """Return where a lane's outputs go: its nearest map item's, else the context."""
    for block, _state, lane in chain[::-1]:
        if block.get("type") == "map":
            return lane["outputs"]
    context: dict[str, Any] = run.context
    return context


def decisions_of(run: Run, chain: Chain) -> dict[str, Any]:
    """Return where a lane's gates' decisions go: its nearest map item's, else the run's."""
    for block, _state, lane in chain[::-1]:
        if block.get("type") == "map":
            return lane.setdefault("decisions", {})
    run.graph = dict(run.graph or {})
    top: dict[str, Any] = run.graph.setdefault(graph.DECISIONS, {})
    return top


def in_item(chain: Chain) -> bool:
    """Return whether the lane is in a map's item (at any depth)."""
    return any(block.get("type") == "map" for block, _state, _lane in chain)


def block_state(run: Run) -> BlockState | None:
    """Return the state of the block at the top of the plan the run is at, if any."""
    state: BlockState | None = (run.graph or {}).get(BLOCK)
    return state


def block_save(run: Run, state: BlockState | None) -> None:
    """Keep (or, with None, drop) the block's state in the run's graph state."""
    graph_state = dict(run.graph or {})
    if state is None:
        graph_state.pop(BLOCK, None)
    else:
        graph_state[BLOCK] = state
    run.graph = graph_state


def new_lane(block: Node, index: int, prefix: str, *, run: Run | None = None) -> Lane:
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
        first = lane_nodes(block, index)[0]["id"]
        if first in visits:
            visits[first] += 1  # the lane enters its first node now
    return Lane(
        index=index,
        path=path,
        position=0,
        status="active",
        visits=visits,
        outputs={},
        clearance={},
        request=None,
    )


def _find(block: Node, state: BlockState, path: str, outer: Chain | None = None) -> Chain | None:
    """Return the chain of the lane at `path`, searching nested blocks too."""
    for lane in state["lanes"]:
        chain = [*(outer or []), (block, state, lane)]
        if lane["path"] == path:
            return chain
        nested = lane.get("block")
        if nested and path.startswith(lane["path"] + "/"):
            inner = lane_nodes(block, lane["index"])[lane["position"]]
            found = _find(inner, nested, path, chain)
            if found is not None:
                return found
    return None


def chain_at(run: Run, path: str | None) -> Chain | None:
    """Return the chain of the lane at `path` in the block the run is at, or None."""
    state = block_state(run)
    if not state or not path or run.position >= len(run.nodes):
        return None
    return _find(run.nodes[run.position], state, path)


def chain_of(run: Run, path: str | None) -> Chain:
    """Return the chain of the lane at `path`; KeyError when there is none."""
    chain = chain_at(run, path)
    if chain is None:
        raise KeyError(path)
    return chain


def lane_paths(block: Node, state: BlockState, *, waiting_only: bool) -> list[str]:
    """Return the node paths of a block's lanes (at every depth) in flight or waiting."""
    paths = []
    for lane in state["lanes"]:
        nodes = lane_nodes(block, lane["index"])
        if lane["position"] >= len(nodes):
            continue
        node = nodes[lane["position"]]
        nested = lane.get("block")
        if nested:
            paths.extend(lane_paths(node, nested, waiting_only=waiting_only))
        elif (
            lane["status"] == "waiting"
            or lane.get("child")
            or (lane["status"] == "active" and not waiting_only)
        ):
            paths.append(f"{lane['path']}/{node['id']}")
    return paths


def active_paths(run: Run) -> list[str]:
    """Return the node paths of a block's lanes in flight or waiting, at every depth."""
    state = block_state(run)
    if not state or run.position >= len(run.nodes):
        return []
    return lane_paths(run.nodes[run.position], state, waiting_only=False)


def child_path(run: Run, child_id: int) -> str | None:
    """Return the node path of the lane (at any depth) waiting on child `child_id`."""
    state = block_state(run)
    if not state or run.position >= len(run.nodes):
        return None

    def search(block: Node, block_state: BlockState) -> str | None:
        for lane in block_state["lanes"]:
            nodes = lane_nodes(block, lane["index"])
            if lane["position"] >= len(nodes):
                continue
            node = nodes[lane["position"]]
            if lane.get("child") == child_id:
                return f"{lane['path']}/{node['id']}"
            nested = lane.get("block")
            if nested:
                found = search(node, nested)
                if found is not None:
                    return found
        return None

    return search(run.nodes[run.position], state)


def lane_move(lane: Lane, nodes: list[Node], target: int) -> None:
    """Move a lane to `target` in its nodes, counting the entry into that node."""
    lane["position"] = target
    lane["clearance"] = {}
    if target < len(nodes):
        node_id = nodes[target]["id"]
        first = 1 if target == 0 else 0
        lane["visits"][node_id] = lane["visits"].get(node_id, first) + 1


def lane_move_on(lane: Lane, nodes: list[Node]) -> None:
    """Move a lane past its current node along its successor."""
    lane_move(lane, nodes, graph.successor(nodes, lane["position"]))


def lane_visit(lane: Lane, node_id: str) -> int:
    """Return which entry into `node_id` the lane is at (1 for the first)."""
    return int(lane["visits"].get(node_id, 1))


def lane_pause(
    run: Run, block: Node, lane: Lane, node: Node, path: str, **ask: Unpack[Ask]
) -> None:
    """Open a request for one lane; the other lanes go on."""
    ask["state"] = {**(ask.get("state") or {}), "lane": lane["path"], "block": block["id"]}
    request = request_open(
        run,
        ask,
        event="node.waiting",
        node_id=node["id"],
        node_path=path,
        position=lane["position"],
    )
    lane["status"], lane["request"] = "waiting", request.pk


def guard_paths(guards: list[dict[str, Any]], lane: Lane) -> list[dict[str, Any]]:
    """Name each guarded action by its node path: a map's items share node ids.

    An entry of a block inside the lane already has its path within the lane.
    """
    for guard in guards:
        guard["path"] = f"{lane['path']}/{guard.get('path') or guard['node']}"
    return guards


def gates_above(run: Run, chain: Chain, nodes: list[Node], position: int) -> list[Node]:
    """Return the gates before the blocks a lane's first actions are in, nearest first.

    Level by level outwards: a gate before the lane's block in the list
    around it, else (when that block too starts its lane) before the block
    around that, up to the top of the plan.
    """
    for level in range(len(chain) - 1, -1, -1):
        if level == 0:
            around, at = run.nodes, run.position
        else:
            outer, _state, lane = chain[level - 1]
            around, at = lane_nodes(outer, lane["index"]), lane["position"]
        found = gates_before_lane(around, at, nodes, position)
        if found:
            return [around[i] for i in found]
        if not lane_start_reaches(nodes, position):
            return []
        nodes, position = around, at
    return []
