"""What a gate guards: the exact, resolved parameters of the actions it lets run.

A person approves what they saw. The gate records the SHA-256 of the guarded
actions' resolved parameters; before a guarded step runs, the engine resolves
them again and runs the step only when the digest still matches.
"""

from __future__ import annotations

from typing import Any

from agentos_common.canonical import canonical_digest
from workflows import executor_config, graph
from workflows.templating import references, render, root_key


def params_digest(*, node_id: str, action: str, params: Any) -> str:
    """Return the SHA-256 of one action's resolved parameters."""
    return canonical_digest({"node": node_id, "action": action, "params": params})


def guard_entry(*, node: dict, position: int, params: Any, unresolved: list[str]) -> dict:
    """Return what a request shows and records about one guarded action."""
    try:
        risk = executor_config.registry().get(node["action"]).risk
    except Exception:  # an unknown action cannot run anyway; show it as high risk
        risk = "high"
    return {
        "node": node["id"],
        "position": position,
        "action": node["action"],
        "risk": risk,
        "params": params,
        "unresolved": unresolved,
        "digest": params_digest(node_id=node["id"], action=node["action"], params=params),
    }


def guards_after(nodes: list[dict], position: int, context: dict) -> list[dict]:
    """Return the action nodes a gate at `position` guards, resolved from the context.

    A gate guards the actions that follow it, along every path (its `next`,
    each case of a branch), up to the next gate or input node (or the end).
    """
    return guards_from(nodes, graph.successor(nodes, position), context)


BLOCK_TYPES = ("parallel", "map")


def _guarded_positions(
    nodes: list[dict], start: int, blocks: list[int] | None = None
) -> list[int]:
    """Return the action positions reachable from `start` through actions and branches.

    With `blocks`, also collect the parallel blocks and maps reached that way:
    a gate before a block guards the first actions of each of its lanes.
    """
    found: list[int] = []
    seen: set[int] = set()
    todo = [start]
    while todo:
        position = todo.pop(0)
        if position >= len(nodes) or position in seen:
            continue
        seen.add(position)
        kind = nodes[position].get("type", "action")
        if kind in ("action", "workflow"):
            # A child workflow is guarded like an action: its inputs, and
            # through them its first actions, are what the gate lets run.
            found.append(position)
            todo.append(graph.successor(nodes, position))
        elif kind == "branch":
            todo.extend(graph.edges(nodes, position))
        elif kind in BLOCK_TYPES and blocks is not None:
            blocks.append(position)
    return found


def lane_entries(block: dict, context: dict, prefix: str = "") -> list[dict]:
    """Return the guard entries of a block's lanes' first actions, by node path.

    A map's items are resolved from the context; an item list not known yet
    guards nothing here (each item's actions are then asked again). A block
    at the start of a lane adds its own lanes' first actions, nested paths
    and all (`hires[0]/setup/1/it`).
    """
    base = f"{prefix}{block['id']}"
    lanes: list[tuple[str, list[dict], dict]] = []
    if block["type"] == "parallel":
        for index, branch in enumerate(block["branches"]):
            lanes.append((f"{base}/{index}", branch["nodes"], context))
    else:
        items = render(block["items"], context, set())
        if isinstance(items, list):
            for index, item in enumerate(items[:1000]):
                scope = {**context, block["as"]: item}
                lanes.append((f"{base}[{index}]", block["nodes"], scope))
    entries = []
    for lane_path, nodes, scope in lanes:
        inner: list[int] = []
        for index in _guarded_positions(nodes, 0, inner):
            node = nodes[index]
            if node.get("type") == "workflow":
                # A child in the lane: its inputs and first actions, by path.
                for entry in child_entries(node, index, scope):
                    entry["path"] = f"{lane_path}/{entry.get('path') or entry['node']}"
                    entries.append(entry)
                continue
            missing: set[str] = set()
            params = render(node.get("params", {}), scope, missing)
            entry = guard_entry(
                node=node, position=index, params=params, unresolved=sorted(missing)
            )
            entry["path"] = f"{lane_path}/{node['id']}"
            entries.append(entry)
        for index in inner:
            entries.extend(lane_entries(nodes[index], scope, prefix=f"{lane_path}/"))
    return entries


def lane_start_reaches(nodes: list[dict], position: int) -> bool:
    """Return whether the start of a lane leads to `position` through actions and branches.

    `position` may be an action or a block (a block inside the lane).
    """
    blocks: list[int] = []
    return position in _guarded_positions(nodes, 0, blocks) or position in blocks


def gates_before_lane(
    nodes: list[dict], block_position: int, lane_nodes: list[dict], position: int
) -> list[int]:
    """Return the top-level gates that guard an action at the start of a lane.

    That is an action reached from the lane's start through actions and
    branches only, in a block a gate leads to (as `governing_gates`).
    """
    if not lane_start_reaches(lane_nodes, position):
        return []
    gates = []
    for index, node in enumerate(nodes):
        if node.get("type") != "approval":
            continue
        reached: list[int] = []
        _guarded_positions(nodes, graph.successor(nodes, index), reached)
        if block_position in reached:
            gates.append(index)
    return sorted(gates, key=lambda index: (index > block_position, abs(block_position - index)))


def governing_gate(nodes: list[dict], position: int) -> int | None:
    """Return the index of the approval node that guards the action at `position`.

    In a straight line that is the nearest node before it that is not an
    action, when it is an approval gate; None when an input node (or the
    start) comes first. In a graph, see `governing_gates`.
    """
    gates = governing_gates(nodes, position)
    return gates[0] if gates else None


def governing_gates(nodes: list[dict], position: int) -> list[int]:
    """Return the gates from which a path of actions (and branches) leads to `position`.

    Nearest first. In a straight line there is at most one; where paths
    join (a branch's cases meeting again), an approval of any of them lets
    the step run, for the parameters that gate's request showed.
    """
    if not any(node.get("next") or node.get("type") == "branch" for node in nodes):
        for index in range(position - 1, -1, -1):
            kind = nodes[index].get("type", "action")
            if kind == "action":
                continue
            return [index] if kind == "approval" else []
        return []
    gates = [
        index
        for index, node in enumerate(nodes)
        if node.get("type") == "approval"
        and position in _guarded_positions(nodes, graph.successor(nodes, index))
    ]
    return sorted(gates, key=lambda index: (index > position, abs(position - index)))


def guards_from(nodes: list[dict], start: int, context: dict) -> list[dict]:
    """Return the guard entries of the actions from `start` up to the next gate or input.

    A parallel block or map reached on the way adds its lanes' first actions.
    """
    guarded = []
    blocks: list[int] = []
    for index in _guarded_positions(nodes, start, blocks):
        node = nodes[index]
        if node.get("type") == "workflow":
            guarded.extend(child_entries(node, index, context))
            continue
        missing: set[str] = set()
        params = render(node.get("params", {}), context, missing)
        guarded.append(
            guard_entry(node=node, position=index, params=params, unresolved=sorted(missing))
        )
    for index in blocks:
        guarded.extend(lane_entries(nodes[index], context))
    return guarded


def child_entry(
    *, node: dict, position: int, inputs: Any, unresolved: list[str] | None = None
) -> dict:
    """Return the guard entry of a child workflow node: the pinned version and its inputs."""
    action = f"workflow:{node['workflow']}@{node.get('version') or 'current'}"
    return {
        "node": node["id"],
        "position": position,
        "action": action,
        "risk": "high",
        "params": inputs,
        "unresolved": list(unresolved or []),
        "digest": params_digest(node_id=node["id"], action=action, params=inputs),
    }


def child_entries(node: dict, position: int, context: dict) -> list[dict]:
    """Return what a gate before a child shows: its inputs, then the child's first actions.

    The child's first actions (up to its own first gate or input) are
    resolved from the inputs against the pinned version, each under the
    path `<node>/<child node>`. The inputs' digest is what binds: the child
    starts only when they still match, and with the same inputs and the
    same pinned plan its first actions run with exactly these parameters.
    """
    from workflows.engine.children import child_spec

    missing: set[str] = set()
    inputs = render(node.get("inputs", {}), context, missing)
    entries = [
        child_entry(node=node, position=position, inputs=inputs, unresolved=sorted(missing))
    ]
    spec = child_spec(node) or {}
    nodes = (spec.get("plan") or {}).get("nodes") or []
    scope = dict(inputs) if isinstance(inputs, dict) else {}
    for key, prop in ((spec.get("inputs") or {}).get("properties") or {}).items():
        if key not in scope and isinstance(prop, dict) and "default" in prop:
            scope[key] = prop["default"]
    for index in _guarded_positions(nodes, 0):
        inner = nodes[index]
        if inner.get("type") == "workflow":
            continue
        unknown: set[str] = set()
        params = render(inner.get("params", {}), scope, unknown)
        entry = guard_entry(node=inner, position=index, params=params, unresolved=sorted(unknown))
        path = f"{node['id']}/{inner['id']}"
        entry["node"] = entry["path"] = path
        entries.append(entry)
    return entries


def still_approved(
    guard: dict, node: dict, context: dict, *, answered: tuple[str, ...] = ()
) -> tuple[bool, str]:
    """Return whether a step's parameters still match what a person approved.

    A parameter built only from values that were unknown when the gate was
    decided (its `unresolved` references) or that a person gave later in
    answer to the step's own question (`answered`, e.g. the laptop model a
    portal asked for) was not part of what the approver saw: it may differ.
    Every other parameter must be exactly what the approver saw. Also return
    the digest of the parameters as they are now.
    """
    now = render(node.get("params", {}), context, set())
    digest = params_digest(node_id=node["id"], action=node["action"], params=now)
    seen = guard.get("params") or {}
    free = {root_key(ref) for ref in (*guard.get("unresolved", []), *answered)}
    templates = node.get("params", {})
    if set(now) != set(seen):
        return False, digest
    for name, template in templates.items():
        roots = {root_key(ref) for ref in references(template)}
        if roots and roots <= free:
            continue
        if now.get(name) != seen.get(name):
            return False, digest
    return True, digest


def guards_digest(guards: list[dict]) -> str:
    """Return the digest of everything a request guards ("" when it guards nothing)."""
    if not guards:
        return ""
    return canonical_digest([[g["node"], g["position"], g["digest"]] for g in guards])
