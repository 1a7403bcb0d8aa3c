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

from workflows.exceptions import ReplayError
from workflows.models import Event, Run
from workflows.services import merge_values
from workflows.states import RunStatus

RESUMED_WITH_VALUES = frozenset({"approval_node", "input_node", "missing", "action_input"})
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
            )
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
            state.position = _index(nodes, node) + 1
            state.current_node = nodes[state.position]["id"] if state.position < len(nodes) else ""
    elif kind == "run.paused":
        state.status = RunStatus.WAITING
        state.current_node = data.get("node", state.current_node)
        state.position = _index(nodes, state.current_node)
    elif kind == "run.resumed":
        state.status = RunStatus.QUEUED
        if data.get("purpose") in RESUMED_WITH_VALUES:
            merge_values(state.context, data.get("values") or {})
        state.current_node = data.get("next_node") or ""
        state.position = _index(nodes, state.current_node) if state.current_node else len(nodes)
    elif kind in ENDINGS:
        state.status = ENDINGS[kind]
        if kind == "run.succeeded":
            state.position, state.current_node = len(nodes), ""
    elif kind in ("run.lease_expired", "run.requeued"):
        state.status = RunStatus.QUEUED


def state_at(run: Run, seq: int) -> ReplayState:
    """Return the run's state right after event `seq`."""
    if seq < 1 or seq > run.last_seq:
        raise ReplayError(f"run {run.pk} has events 1 to {run.last_seq}")
    states = replay(run, until_seq=seq)
    if not states or states[-1].seq != seq:
        raise ReplayError(f"run {run.pk} has no event {seq}")
    return states[-1]
