"""Moving a run along its plan's graph: successors, visits, branch and fail.

A node's successor is the next node of its list unless it names another
(`next`, a branch's case, an approval's `on_reject`). Each entry into a node
is counted in `run.graph["visits"]`; a node entered more often than its
`max_visits` fails the run, naming it.
"""

from __future__ import annotations

from typing import Any

from workflows import graph
from workflows.engine.base import append_event
from workflows.models import Run
from workflows.resume import ResumeGrant
from workflows.services import run_fail
from workflows.templating import render

VISITS = "visits"


def scope(run: Run) -> dict[str, Any]:
    """Return what references and conditions read: the context and `decisions`."""
    decisions = (run.graph or {}).get(graph.DECISIONS)
    return {**run.context, graph.DECISIONS: decisions} if decisions else run.context


def visit_of(run: Run, node_id: str) -> int:
    """Return which entry into `node_id` the run is at (1 for the first)."""
    return int((run.graph or {}).get(VISITS, {}).get(node_id, 1))


def move_to(run: Run, position: int, *, actor: Any = None) -> bool:
    """Move a locked run to `position`; False when that failed the run.

    The first node of the plan is entered when the run starts, so its first
    recorded entry is its second visit.
    """
    nodes = run.nodes
    run.position = position
    run.set_grant(ResumeGrant())
    if position >= len(nodes):
        run.current_node = ""
        return True
    node = nodes[position]
    run.current_node = node["id"]
    state = dict(run.graph or {})
    visits = dict(state.get(VISITS, {}))
    first = 1 if position == 0 else 0
    visits[node["id"]] = visits.get(node["id"], first) + 1
    state[VISITS] = visits
    run.graph = state
    return not over_visits(run, node, visits[node["id"]], node["id"], actor=actor)


def over_visits(
    run: Run, node: dict[str, Any], visit: int, name: str, *, actor: Any = None
) -> bool:
    """Fail the run when `visit` is past the node's `max_visits` (True then).

    `name` names the node in the error: its id, or its path inside a block.
    """
    limit = node.get("max_visits")
    if limit is None or visit <= limit:
        return False
    run_fail(
        run=run,
        actor=actor,
        node=name,
        error=f"{name}: entered more than max_visits ({limit}) times",
    )
    return True


def move_on(run: Run, *, actor: Any = None) -> bool:
    """Move a locked run past its current node along its successor."""
    return move_to(run, graph.successor(run.nodes, run.position), actor=actor)


def branch_choose(run: Run, node: dict[str, Any]) -> tuple[int, int | None] | list[str]:
    """Return (target position, case index or None for the default) for a branch.

    Return the missing context keys instead when a condition reads keys the
    context lacks; raise graph.ConditionError when one fails to evaluate.
    """
    nodes = run.nodes
    for index, case in enumerate(node["cases"]):
        condition = graph.compile_condition(case["when"])
        try:
            holds = condition.evaluate(scope(run))
        except graph.ConditionMissing as exc:
            return exc.keys
        if holds:
            return graph.index_of(nodes, case["next"]), index
    default = node.get("default")
    return (graph.index_of(nodes, default) if default else run.position + 1), None


def branch_taken(run: Run, node: dict[str, Any], target: int, case: int | None) -> None:
    nodes = run.nodes
    append_event(
        run,
        type="branch.taken",
        data={
            "node": node["id"],
            "node_path": node["id"],
            "case": case,
            "when": node["cases"][case]["when"] if case is not None else None,
            "next": nodes[target]["id"] if target < len(nodes) else graph.END,
        },
    )


def fail_node(run: Run, node: dict[str, Any], context: dict[str, Any], name: str) -> None:
    """End the run as failed with a `fail` node's message, rendered from `context`."""
    message = str(render(node["message"], context, set()))
    run_fail(run=run, actor=None, node=name, error=message[:2000])
