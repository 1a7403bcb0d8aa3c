"""Child workflows: a `type: workflow` node runs a stored workflow as a child run.

The child is a real run (`parent` and `parent_node` name where it came
from) of the workflow version pinned when the parent started, with the
inputs the node resolves from the parent's context. The parent waits at the
node (`waiting`, no request: nothing can proceed) until the child ends; the
child's end wakes it (`child.ended`), and its next move takes the child's
declared outputs (`child.finished`) or fails the node when the child failed
or was cancelled. Cancelling (or failing) the parent cancels its children,
and their open requests, in the same transaction.

Durability: the child's id is recorded in the parent's graph state in the
same commit that creates the child, so a worker killed in between either
did both or neither; a lost wake-up (a worker killed between the child's
end and waking the parent) is found by the stale-run sweep.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from django.db import transaction

from workflows import graph, hooks
from workflows.engine import flow
from workflows.engine.asks import Node, ask_gate_again, digest_mismatch, missing_ask, pause
from workflows.engine.base import NEXT, STOP, _Next, _Stop, append_event
from workflows.engine.lanes import child_path
from workflows.events import event_append
from workflows.guards import child_entry, governing_gates
from workflows.models import Run, Workflow, WorkflowVersion
from workflows.plans import MAX_CHILD_DEPTH
from workflows.services import _context_errors, enqueue_advance, lock_run, run_fail, set_status
from workflows.states import MODE_STRICTNESS, TERMINAL, RunStatus
from workflows.templating import render

logger = logging.getLogger(__name__)

# run.graph["children"]: "<node id>#<visit>" -> the child run's id.
CHILDREN = "children"
# Run.parent_node's size.
PARENT_NODE_CHARS = 100


def pin_versions(plan: dict[str, Any]) -> dict[str, Any]:
    """Return the plan with every child's version pinned (the current one if unset).

    Called when a run is created: what the parent's approvers and the
    engine see is the version that will run, whatever is saved later. The
    children inside blocks (at any depth) are pinned too.
    """
    nodes = plan.get("nodes") or []
    if not any(isinstance(n, dict) and n.get("type") == "workflow" for n in graph.walk(nodes)):
        return plan
    plan = copy.deepcopy(plan)
    for node in graph.walk(plan["nodes"]):
        if node.get("type") == "workflow" and not node.get("version"):
            current = Workflow.objects.filter(slug=node["workflow"]).values("version").first()
            if current is not None:
                node["version"] = current["version"]
    return plan


def child_key(run: Run, node: dict[str, Any]) -> str:
    return f"{node['id']}#{flow.visit_of(run, node['id'])}"


def child_of(run: Run, node: dict[str, Any]) -> int | None:
    """Return the id of the child this visit of `node` started, or None."""
    return ((run.graph or {}).get(CHILDREN) or {}).get(child_key(run, node))


def child_spec(node: Node) -> dict[str, Any] | None:
    """Return the pinned spec of a workflow node's child (None if it is gone)."""
    row = (
        WorkflowVersion.objects.filter(workflow__slug=node["workflow"], version=node["version"])
        .values("spec")
        .first()
        if node.get("version")
        else None
    )
    return row["spec"] if row else None


def depth_of(run: Run) -> int:
    """Return how many parents a run has (0 for a top-level run)."""
    depth, parent_id, node = 0, run.parent_id, run.parent_node
    while parent_id is not None and node:
        depth += 1
        above = Run.objects.filter(pk=parent_id).values("parent_id", "parent_node").first()
        if above is None:
            break
        parent_id, node = above["parent_id"], above["parent_node"]
    return depth


def decide_child(run: Run, node: Node) -> _Stop | _Next:
    """Start the node's child, wait for it, or take its outcome; NEXT moves on."""
    child_id = child_of(run, node)
    if child_id is None:
        missing: set[str] = set()
        inputs = render(node.get("inputs", {}), flow.scope(run), missing)
        if missing:
            label = node.get("title") or node["id"]
            pause(
                run,
                **missing_ask(run, node, None, sorted(missing), label=label, to="start the child"),
            )
            return STOP
        refused = _gate_mismatch(run, node, inputs)
        if refused:
            return STOP
        problem = _start(run, node, inputs)
        if problem:
            run_fail(run=run, actor=None, node=node["id"], error=f"{node['id']}: {problem}")
        return STOP
    changed = child_outputs(run, node, child_id, node["id"])
    if changed is None:
        # Woken too early (or re-queued by the sweep): wait again.
        set_status(run, RunStatus.WAITING)
        return STOP
    if isinstance(changed, _Stop):
        return STOP
    run.context.update(changed)
    append_event(
        run,
        type="child.finished",
        data={"node": node["id"], "node_path": node["id"], "child": child_id, "context": changed},
    )
    if not flow.move_on(run):
        return STOP
    return NEXT


def child_outputs(run: Run, node: Node, child_id: int, name: str) -> dict[str, Any] | _Stop | None:
    """Return what a node's child that succeeded gives back: its declared outputs.

    None while the child runs; STOP, having failed the run, when the child
    is gone, failed or was cancelled, or ended without a declared output.
    `name` names the node in errors: its id, or its path inside a block.
    """
    child = Run.objects.filter(pk=child_id).only("status", "context", "error").first()
    if child is None:
        run_fail(run=run, actor=None, node=name, error=f"{name}: child run is gone")
        return STOP
    if child.status not in TERMINAL:
        return None
    if child.status != RunStatus.SUCCEEDED:
        reason = f": {child.error}" if child.error else ""
        run_fail(
            run=run,
            actor=None,
            node=name,
            error=f"{name}: child run #{child.pk} ({node['workflow']}) {child.status}{reason}"[
                :2000
            ],
        )
        return STOP
    outputs = node.get("outputs") or {}
    lacking = [key for key in outputs.values() if key not in child.context]
    if lacking:
        run_fail(
            run=run,
            actor=None,
            node=name,
            error=f"{name}: child run #{child.pk} ended without " + ", ".join(sorted(lacking)),
        )
        return STOP
    return {key: copy.deepcopy(child.context[outputs[key]]) for key in outputs}


def _start(run: Run, node: Node, inputs: dict[str, Any]) -> str:
    """Create the child run in this transaction; return a problem, or ""."""
    problem, child_id = create_child(run, node, inputs, node_path=node["id"])
    if problem:
        return problem
    state = dict(run.graph or {})
    state[CHILDREN] = {**(state.get(CHILDREN) or {}), child_key(run, node): child_id}
    run.graph = state
    set_status(run, RunStatus.WAITING)
    return ""


def create_child(
    run: Run, node: Node, inputs: dict[str, Any], *, node_path: str
) -> tuple[str, int]:
    """Create a node's child run and its events in this transaction.

    Return a problem (and 0) when it cannot start, else "" and the child's
    id; the caller records the id where it waits (the run's graph state at
    the top of the plan, the lane inside a block) in the same commit.
    """
    spec = child_spec(node)
    if spec is None:
        return f"version {node.get('version')} of workflow {node['workflow']!r} is not stored", 0
    if depth_of(run) + 1 > MAX_CHILD_DEPTH:
        return f"children nest deeper than {MAX_CHILD_DEPTH} levels", 0
    schema = spec.get("inputs") or {"type": "object", "properties": {}}
    context = dict(inputs)
    for key, prop in (schema.get("properties") or {}).items():
        if key not in context and isinstance(prop, dict) and "default" in prop:
            context[key] = copy.deepcopy(prop["default"])
    errors = _context_errors(schema, context)
    if errors:
        return "the child's inputs are not valid: " + "; ".join(
            f"{e.field}: {e.message}" for e in errors
        ), 0
    mode = max((run.mode, spec.get("mode") or run.mode), key=lambda m: MODE_STRICTNESS.get(m, 1))
    plan = pin_versions(spec["plan"])
    workflow = Workflow.objects.get(slug=node["workflow"])
    child = Run.objects.create(
        workflow=workflow,
        workflow_version=node["version"],
        plan=plan,
        inputs_schema=schema,
        mode=mode,
        context=context,
        requester=run.requester,
        current_node=plan["nodes"][0]["id"],
        parent=run,
        # The node's path inside a block (the field holds 100 characters;
        # a longer path is named by the node's id, and events carry the path).
        parent_node=node_path if len(node_path) <= PARENT_NODE_CHARS else node["id"],
    )
    parent: dict[str, Any] = {"run": run.pk, "node": node["id"]}
    if node_path != node["id"]:
        parent["node_path"] = node_path
    event_append(
        run=child,
        type="run.created",
        actor=None,
        data={
            "workflow": workflow.slug,
            "version": child.workflow_version,
            "mode": mode,
            "context": context,
            "nodes": [n["id"] for n in plan["nodes"]],
            "parent": parent,
        },
    )
    child.save(update_fields=["last_seq", "last_hash"])
    append_event(
        run,
        type="child.started",
        data={
            "node": node["id"],
            "node_path": node_path,
            "child": child.pk,
            "workflow": workflow.slug,
            "version": child.workflow_version,
            "inputs": inputs,
        },
    )
    child_id = child.pk
    transaction.on_commit(lambda: enqueue_advance(child_id))
    return "", child_id


def _gate_mismatch(run: Run, node: Node, inputs: dict[str, Any]) -> bool:
    """Ask the governing gate again when the child's inputs differ from those approved."""
    gates = [run.nodes[i] for i in governing_gates(run.nodes, run.position)]
    if not gates:
        return False
    for gate in gates:
        approved = hooks.approved_guard(
            run=run, node_id=node["id"], position=run.position, gate=gate["id"]
        )
        if approved is None:
            continue
        now = child_entry(node=node, position=run.position, inputs=inputs)
        if approved.get("digest") == now["digest"]:
            return False
        digest_mismatch(run, node, approved, now["digest"])
        ask_gate_again(
            run, gate, node, reason="the child's inputs changed since the gate was approved"
        )
        return True
    ask_gate_again(run, gates[0], node, reason="no approval of this gate in this run")
    return True


# --- the child's end, and the parent's cancellation ---------------------------


def child_ended(run: Run) -> None:
    """Wake the parent of a child that has just ended (after this commit)."""
    if run.parent_id is None or not run.parent_node:
        return
    parent_id, child_id = run.parent_id, run.pk
    transaction.on_commit(lambda: wake_parent(parent_id, child_id))


def wake_parent(parent_id: int, child_id: int) -> bool:
    """Queue a parent waiting on `child_id` again; True when it was woken."""
    try:
        with transaction.atomic():
            parent = lock_run(parent_id)
            if parent.status != RunStatus.WAITING:
                return False
            node = parent.nodes[parent.position] if parent.position < len(parent.nodes) else {}
            path: str | None = node.get("id", "")
            if node.get("type") != "workflow" or child_of(parent, node) != child_id:
                # Or a lane of a block waits on it.
                path = child_path(parent, child_id)
                if path is None:
                    return False
            child = Run.objects.filter(pk=child_id).values("status").first()
            if child is None or child["status"] not in TERMINAL:
                return False
            set_status(parent, RunStatus.QUEUED)
            event_append(
                run=parent,
                type="child.ended",
                save_head=False,
                data={
                    "node": str(path).rsplit("/", 1)[-1],
                    "node_path": path,
                    "child": child_id,
                    "status": child["status"],
                },
            )
            parent.save_state()
            transaction.on_commit(lambda: enqueue_advance(parent_id))
            return True
    except Exception:  # the sweep wakes it later
        logger.exception("run %s: could not wake it after child %s ended", parent_id, child_id)
        return False


def wake_stale_parents() -> int:
    """Wake waiting parents whose child has ended (a wake-up lost to a crash)."""
    count = 0
    ended = Run.objects.filter(status__in=sorted(TERMINAL), parent__status=RunStatus.WAITING)
    for parent_id, child_id in ended.exclude(parent_node="").values_list("parent_id", "pk"):
        count += wake_parent(parent_id, child_id)
    return count


def cancel_children(run: Run, *, actor: Any, reason: str) -> list[int]:
    """Cancel a locked run's children that have not ended, and theirs (same transaction)."""
    cancelled: list[int] = []
    ids = (
        Run.objects.filter(parent=run).exclude(parent_node="").exclude(status__in=sorted(TERMINAL))
    )
    for child_id in ids.order_by("pk").values_list("pk", flat=True):
        child = lock_run(child_id)
        if child.status in TERMINAL:
            continue
        source = set_status(child, RunStatus.CANCELLED)
        why = f"parent run #{run.pk} ended: {reason}".strip()
        event_append(
            run=child,
            type="run.cancelled",
            actor=actor,
            save_head=False,
            data={"from": source, "reason": why, "node": child.current_node, "parent": run.pk},
        )
        hooks.close_requests(run=child, actor=actor, reason=f"run cancelled: {why}")
        cancelled.append(child.pk)
        cancelled += cancel_children(child, actor=actor, reason=reason)
        child.save_state()
    return cancelled
