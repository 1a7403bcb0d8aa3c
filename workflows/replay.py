"""The time machine: a run's state at any event, rebuilt from its events alone.

Nothing here reads the run's projection (status, context, position); it
folds the events in order. `run.created` carries the starting context (and,
for a fork, the starting position), `step.succeeded` / `step.marked_done`
the context changes of a completed node, `run.resumed` the values a person
supplied and the node the run moves to.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from workflows import graph
from workflows.exceptions import ReplayError
from workflows.models import Event, Run
from workflows.replay_lanes import LaneFold, fold_from_state
from workflows.services import merge_values
from workflows.states import RunStatus

RESUMED_WITH_VALUES = frozenset({"approval_node", "input_node", "missing", "action_input"})
# A resume for these moves the run on to another node (an entry, for loops).
MOVED_ON = frozenset({"approval_node", "input_node", "on_reject"})
ENDINGS = {
    "run.succeeded": RunStatus.SUCCEEDED,
    "run.failed": RunStatus.FAILED,
    "run.cancelled": RunStatus.CANCELLED,
}


@dataclass
class ReplayState:
    """What a run looked like right after one of its events."""

    seq: int
    type: str
    status: str
    position: int
    current_node: str
    context: dict[str, Any]
    # node id -> the output of its completed step, in plan order.
    completed: dict[str, dict] = field(default_factory=dict)
    completed_steps: dict[str, int] = field(default_factory=dict)
    # node id -> how often the run entered it (loops), as in run.graph.
    visits: dict[str, int] = field(default_factory=dict)
    # node id -> a gate's decision, readable as decisions.<node>.
    decisions: dict[str, dict] = field(default_factory=dict)
    # Inside a parallel block or map: its node id, and its node paths in
    # flight or waiting (which branches were active at this event).
    block: str = ""
    active: list[str] = field(default_factory=list)
    # Inside a block: each lane's progress, and each block's kind and items,
    # by path at every depth (workflows.replay_lanes); what a fork carries.
    lanes: dict[str, dict] = field(default_factory=dict)
    blocks: dict[str, dict] = field(default_factory=dict)

    def enter(self, nodes: list[dict], position: int) -> None:
        """Move to `position`, counting the entry as the engine does."""
        self.position = position
        self.current_node = nodes[position]["id"] if position < len(nodes) else ""
        if self.current_node:
            first = 1 if position == 0 else 0
            self.visits[self.current_node] = self.visits.get(self.current_node, first) + 1


def _index(nodes: list[dict], node_id: str | None) -> int:
    for i, node in enumerate(nodes):
        if node["id"] == node_id:
            return i
    return len(nodes)


def replay(run: Run, *, until_seq: int | None = None) -> list[ReplayState]:
    """Return the state after each event up to `until_seq` (all when None)."""
    nodes = run.nodes
    events = Event.objects.filter(run=run).order_by("seq")
    if until_seq is not None:
        events = events.filter(seq__lte=until_seq)
    states: list[ReplayState] = []
    state: ReplayState | None = None
    for event in events.iterator():
        data = event.data or {}
        if state is None:
            if event.type != "run.created":
                raise ReplayError(f"event 1 of run {run.pk} is not run.created")
            position = int(data.get("position") or 0)
            state = ReplayState(
                seq=event.seq,
                type=event.type,
                status=RunStatus.QUEUED,
                position=position,
                current_node=nodes[position]["id"] if position < len(nodes) else "",
                context=copy.deepcopy(data.get("context") or {}),
                completed=copy.deepcopy(data.get("completed") or {}),
                completed_steps=dict(data.get("completed_steps") or {}),
                visits=dict((data.get("graph") or {}).get("visits") or {}),
                decisions=dict((data.get("graph") or {}).get("decisions") or {}),
            )
            if (data.get("graph") or {}).get("block"):
                # A fork from inside a block starts with its lanes' progress.
                fold_from_state(state, nodes, data["graph"]["block"])
        else:
            state = copy.deepcopy(state)
            state.seq, state.type = event.seq, event.type
            _apply(state, event, nodes)
        states.append(state)
    return states


def _apply(state: ReplayState, event: Event, nodes: list[dict]) -> None:
    data = event.data or {}
    kind = event.type
    if kind in ("run.running", "step.started"):
        state.status = RunStatus.RUNNING
    if state.block:
        LaneFold(state, nodes).apply(kind, data)
    nested = kind in ("block.started", "block.finished") and "/" in (data.get("node_path") or "")
    if state.block and (kind in _LANE_EVENTS or nested):
        # A lane's event, or a block's inside a lane (blocks nest).
        _lane_event(state, kind, data)
        return
    if kind == "step.started":
        state.current_node = data.get("node", state.current_node)
        state.position = _index(nodes, state.current_node)
    elif kind in ("step.succeeded", "step.marked_done"):
        state.context.update(data.get("context") or {})
        node = data.get("node", "")
        state.completed[node] = data.get("output") or {}
        if data.get("step"):
            state.completed_steps[node] = data["step"]
        if kind == "step.succeeded":
            state.enter(nodes, graph.successor(nodes, _index(nodes, node)))
    elif kind == "run.paused":
        state.status = RunStatus.WAITING
        state.current_node = data.get("node", state.current_node)
        state.position = _index(nodes, state.current_node)
    elif kind == "run.resumed":
        state.status = RunStatus.QUEUED
        if data.get("purpose") in RESUMED_WITH_VALUES:
            merge_values(state.context, data.get("values") or {})
        target = data.get("next_node") or ""
        position = _index(nodes, target) if target else len(nodes)
        if data.get("purpose") in MOVED_ON or data.get("resolution") == "mark_done":
            state.enter(nodes, position)
        else:
            state.current_node, state.position = target, position
    elif kind == "block.started":
        state.block, state.active = data.get("node", ""), []
        state.lanes, state.blocks = {}, {}
        LaneFold(state, nodes).started(data.get("node_path") or state.block, data)
    elif kind == "block.finished":
        state.context.update(data.get("context") or {})
        state.decisions.update(data.get("decisions") or {})
        state.block, state.active = "", []
        state.lanes, state.blocks = {}, {}
        state.enter(nodes, graph.successor(nodes, _index(nodes, data.get("node"))))
    elif kind == "child.started":  # the run waits on its child run
        state.status = RunStatus.WAITING
        state.current_node = data.get("node", state.current_node)
        state.position = _index(nodes, state.current_node)
    elif kind == "child.ended":
        state.status = RunStatus.QUEUED
    elif kind == "child.finished":
        state.context.update(data.get("context") or {})
        state.enter(nodes, graph.successor(nodes, _index(nodes, data.get("node"))))
    elif kind == "branch.taken" and "/" in (data.get("node_path") or ""):
        pass  # a lane's branch: the run stays at its block
    elif kind == "branch.taken":
        state.enter(nodes, _index(nodes, data.get("next")))
    elif kind == "approval.decided" and data.get("decided") and "[" in data.get("node_path", ""):
        pass  # a gate in a map's item: its decision is the item's (block.finished lists them)
    elif kind == "approval.decided" and data.get("decided"):
        state.decisions[data["node"]] = data["decided"]
    elif kind in ENDINGS:
        state.status = ENDINGS[kind]
        if kind == "run.succeeded":
            state.position, state.current_node = len(nodes), ""
    elif kind in ("run.lease_expired", "run.requeued"):
        state.status = RunStatus.QUEUED


_LANE_EVENTS = frozenset(
    {
        "step.started",
        "step.succeeded",
        "step.failed",
        "step.interrupted",
        "step.cancelled",
        "step.needs_input",
        "step.outcome_unknown",
        "step.marked_done",
        "node.waiting",
        "node.resumed",
        "lane.finished",
        "child.started",
        "child.finished",
    }
)


def _lane_event(state: ReplayState, kind: str, data: dict) -> None:
    """Fold an event of a block's lane: which node paths are active."""
    path = data.get("node_path") or ""
    if kind in ("step.started", "node.waiting", "step.outcome_unknown", "child.started"):
        if path and path not in state.active:
            state.active.append(path)
        if kind == "step.started":
            state.status = RunStatus.RUNNING
    elif kind in (
        "step.succeeded",
        "step.marked_done",
        "node.resumed",
        "step.cancelled",
        "child.finished",
    ):
        if path in state.active:
            state.active.remove(path)
        state.context.update(data.get("context") or {})
    elif kind == "lane.finished":
        state.active = [p for p in state.active if not p.startswith(path + "/")]
    elif kind == "block.finished":  # a block inside a lane: its results
        state.context.update(data.get("context") or {})
        if "[" not in data.get("node_path", ""):  # not inside a map's item
            state.decisions.update(data.get("decisions") or {})


def state_at(run: Run, seq: int) -> ReplayState:
    """Return the run's state right after event `seq`."""
    if seq < 1 or seq > run.last_seq:
        raise ReplayError(f"run {run.pk} has events 1 to {run.last_seq}")
    states = replay(run, until_seq=seq)
    if not states or states[-1].seq != seq:
        raise ReplayError(f"run {run.pk} has no event {seq}")
    return states[-1]
