"""The time machine inside blocks: each lane's progress, rebuilt from the events.

Replay folds a block's lane events into `ReplayState.lanes` (lane path ->
its node, visits, outputs, decisions, whether it ended) and
`ReplayState.blocks` (block path -> its kind and, for a map, its items), at
every depth. A fork from an event inside a block turns them back into the
engine's block state (`lane_state`), so the fork's lanes go on from where
the parent's were: a lane that moved past a step never runs it again.

A lane path ends in `/<branch>` (a parallel branch) or `[<item>]` (a map's
item); its block's path is what comes before; the lane's nodes are the
block node's branch or body (node ids are unique in a whole plan).
"""

from __future__ import annotations

from typing import Any

from workflows import graph
from workflows.services import merge_values
from workflows.templating import render

# Lane events that move a lane past its node to the node's successor.
_MOVES_ON = frozenset({"step.succeeded", "step.marked_done", "child.finished"})
_RESUMED_WITH_VALUES = frozenset({"approval_node", "input_node", "missing", "action_input"})


def by_id(nodes: list[dict]) -> dict[str, dict]:
    """Return every node of a plan, inside blocks too, by id."""
    return {node["id"]: node for node in graph.walk(nodes) if isinstance(node, dict)}


def split_lane(lane_path: str) -> tuple[str, int]:
    """Return (block path, index) of a lane path: `a[1]/b/2` -> (`a[1]/b`, 2)."""
    if lane_path.endswith("]"):
        block, _, index = lane_path[:-1].rpartition("[")
        return block, int(index)
    block, _, index = lane_path.rpartition("/")
    return block, int(index)


def block_id(block_path: str) -> str:
    return block_path.rsplit("/", 1)[-1]


def lane_list(block: dict, index: int) -> list[dict]:
    if block.get("type") == "parallel":
        return list(block["branches"][index]["nodes"])
    return list(block["nodes"])


def _node_of(path: str) -> tuple[str, str]:
    """Return (lane path, node id) of a node path inside a block."""
    lane, _, node = path.rpartition("/")
    return lane, node


class LaneFold:
    """Fold one event into the lanes of a replay state (see the module's doc)."""

    def __init__(self, state: Any, nodes: list[dict]) -> None:
        self.state = state
        self.nodes = by_id(nodes)

    def lane(self, lane_path: str) -> dict | None:
        lanes: dict[str, dict] = self.state.lanes
        if lane_path in lanes:
            return lanes[lane_path]
        block_path, index = split_lane(lane_path)
        if block_path not in self.state.blocks:
            return None
        block = self.nodes.get(block_id(block_path))
        if block is None:
            return None
        first = lane_list(block, index)[0]["id"]
        lanes[lane_path] = {"node": first, "visits": {}, "outputs": {}, "done": False}
        return lanes[lane_path]

    def writes(self, lane_path: str) -> dict:
        """Return where a lane's values go: its nearest map item's outputs, else the context."""
        path = lane_path
        while path:
            if path.endswith("]"):
                lane = self.lane(path)
                if lane is not None:
                    outputs: dict = lane["outputs"]
                    return outputs
            block_path, _ = split_lane(path)
            path = block_path.rpartition("/")[0] if "/" in block_path else ""
        context: dict = self.state.context
        return context

    def decisions(self, lane_path: str) -> dict | None:
        path = lane_path
        while path:
            if path.endswith("]"):
                lane = self.lane(path)
                if lane is not None:
                    found: dict = lane.setdefault("decisions", {})
                    return found
            block_path, _ = split_lane(path)
            path = block_path.rpartition("/")[0] if "/" in block_path else ""
        return None

    def scope(self, lane_path: str) -> dict:
        """Return what a lane's references read (for a nested map's items)."""
        chain = []
        path = lane_path
        while path:
            chain.append(path)
            block_path, _ = split_lane(path)
            path = block_path.rpartition("/")[0] if "/" in block_path else ""
        scope = {**self.state.context, graph.DECISIONS: self.state.decisions}
        for path in reversed(chain):
            block_path, index = split_lane(path)
            block = self.nodes.get(block_id(block_path), {})
            if block.get("type") == "map":
                items = self.state.blocks.get(block_path, {}).get("items") or []
                lane = self.lane(path) or {}
                item = items[index] if index < len(items) else None
                scope = {**scope, block["as"]: item, **lane.get("outputs", {})}
        return scope

    def move(self, lane_path: str, target: int) -> None:
        lane = self.lane(lane_path)
        if lane is None:
            return
        block_path, index = split_lane(lane_path)
        nodes = lane_list(self.nodes[block_id(block_path)], index)
        lane["node"] = nodes[target]["id"] if target < len(nodes) else graph.END
        if target < len(nodes):
            node_id = nodes[target]["id"]
            first = 1 if target == 0 else 0
            lane["visits"][node_id] = lane["visits"].get(node_id, first) + 1

    def position(self, lane_path: str, node_id: str) -> tuple[list[dict], int]:
        block_path, index = split_lane(lane_path)
        nodes = lane_list(self.nodes[block_id(block_path)], index)
        return nodes, graph.index_of(nodes, node_id)

    def apply(self, kind: str, data: dict) -> None:
        path = data.get("node_path") or ""
        if kind == "block.started":
            self.started(path, data)
            return
        if kind == "lane.finished":
            lane = self.lane(path)
            if lane is not None:
                lane["done"] = True
            return
        if "/" not in path:
            return
        lane_path, node_id = _node_of(path)
        if self.lane(lane_path) is None:
            return
        if kind in _MOVES_ON:
            nodes, at = self.position(lane_path, node_id)
            self.writes(lane_path).update(data.get("lane_context") or data.get("context") or {})
            self.move(lane_path, graph.successor(nodes, at))
        elif kind == "block.finished":
            nodes, at = self.position(lane_path, node_id)
            self.writes(lane_path).update(data.get("lane_context") or data.get("context") or {})
            decided = self.decisions(lane_path)
            target = decided if decided is not None else self.state.decisions
            target.update(data.get("decisions") or {})
            self.move(lane_path, graph.successor(nodes, at))
        elif kind == "branch.taken":
            nodes, _ = self.position(lane_path, node_id)
            self.move(lane_path, graph.index_of(nodes, data.get("next") or graph.END))
        elif kind == "approval.decided" and data.get("decided"):
            decided = self.decisions(lane_path)
            (decided if decided is not None else self.state.decisions)[node_id] = data["decided"]
        elif kind == "node.resumed":
            purpose = data.get("purpose")
            if purpose in _RESUMED_WITH_VALUES:
                merge_values(self.writes(lane_path), data.get("values") or {})
            nodes, at = self.position(lane_path, node_id)
            if purpose in ("approval_node", "input_node"):
                self.move(lane_path, graph.successor(nodes, at))
            elif purpose == "on_reject":
                target = graph.reject_target(nodes, at)
                if target is not None:
                    self.move(lane_path, target)

    def started(self, path: str, data: dict) -> None:
        record: dict[str, Any] = {"kind": data.get("kind"), "count": data.get("lanes", 0)}
        block = self.nodes.get(block_id(path), {})
        if block.get("type") == "map":
            scope = self.scope(path.rpartition("/")[0]) if "/" in path else self.top_scope()
            items = render(block["items"], scope, set())
            record["items"] = items if isinstance(items, list) else []
        self.state.blocks[path] = record
        if block.get("type") == "parallel":
            for index in range(len(block["branches"])):
                self.lane(f"{path}/{index}")

    def top_scope(self) -> dict:
        return {**self.state.context, graph.DECISIONS: self.state.decisions}


def lane_state(state: Any, nodes: list[dict]) -> dict | None:
    """Return the engine's block state (run.graph["block"]) for a fork inside a block.

    Each lane goes on from its node at that event with its visits, outputs
    and decisions; a lane that waited for a person is active again (the
    fork asks anew: nothing approved in the parent carries over); a map
    starts its items not yet started, in order.
    """
    fold = LaneFold(state, nodes)
    top = fold.nodes.get(state.block)
    if top is None:
        return None
    return _block_state(fold, top, state.block)


def _block_state(fold: LaneFold, block: dict, path: str) -> dict:
    record = fold.state.blocks.get(path, {})
    out: dict[str, Any] = {"node": block["id"], "path": path, "lanes": [], "results": {}}
    if block["type"] == "parallel":
        indexes = list(range(len(block["branches"])))
    else:
        items = record.get("items") or []
        seen = [
            split_lane(p)[1]
            for p in fold.state.lanes
            if p.startswith(path + "[") and split_lane(p)[0] == path
        ]
        out["items"] = items
        out["next_item"] = min(len(items), max(seen) + 1) if seen else 0
        indexes = list(range(out["next_item"]))
    for index in indexes:
        lane_path = f"{path}/{index}" if block["type"] == "parallel" else f"{path}[{index}]"
        folded = fold.lane(lane_path) or {}
        nodes = lane_list(block, index)
        node_id = folded.get("node") or nodes[0]["id"]
        position = graph.index_of(nodes, node_id)
        lane: dict[str, Any] = {
            "index": index,
            "path": lane_path,
            "position": position,
            "status": "done" if folded.get("done") else "active",
            "visits": dict(folded.get("visits") or {}),
            "outputs": dict(folded.get("outputs") or {}),
            "clearance": {},
            "request": None,
        }
        if folded.get("decisions"):
            lane["decisions"] = dict(folded["decisions"])
        if lane["status"] == "done" and block["type"] == "map":
            out["results"][str(index)] = lane["outputs"]
            if lane.get("decisions"):
                out.setdefault("decided", {})[str(index)] = lane["decisions"]
        if lane["status"] != "done" and position < len(nodes):
            inner = nodes[position]
            inner_path = f"{lane_path}/{inner['id']}"
            if inner.get("type") in ("parallel", "map") and inner_path in fold.state.blocks:
                lane["block"] = _block_state(fold, inner, inner_path)
        out["lanes"].append(lane)
    return out


def fold_from_state(state: Any, nodes: list[dict], block_state: dict) -> None:
    """Set a replay state's lanes from a block state (a fork's `run.created`)."""
    fold = LaneFold(state, nodes)
    state.block = block_state.get("node", "")
    _unfold(fold, block_state)


def _unfold(fold: LaneFold, block_state: dict) -> None:
    path = block_state.get("path") or block_state.get("node", "")
    block = fold.nodes.get(block_id(path), {})
    record: dict[str, Any] = {"kind": block.get("type"), "count": len(block_state["lanes"])}
    if "items" in block_state:
        record["items"] = block_state["items"]
    fold.state.blocks[path] = record
    for lane in block_state["lanes"]:
        nodes = lane_list(block, lane["index"])
        position = lane["position"]
        fold.state.lanes[lane["path"]] = {
            "node": nodes[position]["id"] if position < len(nodes) else graph.END,
            "visits": dict(lane.get("visits") or {}),
            "outputs": dict(lane.get("outputs") or {}),
            "done": lane.get("status") == "done",
            **({"decisions": dict(lane["decisions"])} if lane.get("decisions") else {}),
        }
        if lane.get("block"):
            _unfold(fold, lane["block"])
