"""Reads for the API and the admin: runs, events, in the shapes they are shown."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import QuerySet

from agentos_common.redaction import redact as redact_secrets
from workflows import executor_config
from workflows.models import Event, Run, Step


def redact(value: Any) -> Any:
    """Return stored data as a person may see it: `agentos_common.redaction.redact`
    with this deployment's secret values. Every surface shows data through it."""
    return redact_secrets(value, executor_config.all_secret_values())


# What `run_summary` reads, and no more: a list of 500 runs loaded whole
# decoded each run's plan, context and graph and its workflow's spec (six
# JSON documents a row), most of a `GET /runs?limit=500` (docs/benchmarks.md).
SUMMARY_FIELDS = (
    "id",
    "status",
    "mode",
    "workflow__slug",
    "workflow_version",
    "current_node",
    "position",
    "requester__username",
    "parent_id",
    "parent_node",
    "forked_at_seq",
    "batch_id",
    "error",
    "created_at",
    "started_at",
    "finished_at",
)


def runs_list(*, status: str | None = None, workflow: str | None = None) -> QuerySet[Run]:
    """Return runs, newest first, narrowed by status and workflow slug, loaded for
    `run_summary` only."""
    runs = (
        Run.objects.select_related("workflow", "requester")
        .only(*SUMMARY_FIELDS)
        .order_by("-created_at", "-id")
    )
    if status:
        runs = runs.filter(status=status)
    if workflow:
        runs = runs.filter(workflow__slug=workflow)
    return runs


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "mode": run.mode,
        "workflow": run.workflow.slug if run.workflow_id else None,
        "workflow_version": run.workflow_version,
        "current_node": run.current_node,
        "position": run.position,
        "requester": run.requester.get_username() if run.requester_id else None,
        "parent": run.parent_id,
        "parent_node": run.parent_node,
        "forked_at_seq": run.forked_at_seq,
        "batch": run.batch_id,
        "error": redact(run.error),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def run_detail(run: Run) -> dict[str, Any]:
    """Return the run with its context (secrets redacted), plan, steps and forks."""
    steps = [
        {
            "id": s.pk,
            "node_id": s.node_id,
            "node_path": s.node_path or s.node_id,
            "position": s.position,
            "visit": s.visit,
            "attempt": s.attempt,
            "action": s.action,
            "status": s.status,
            "params": redact(s.params),
            "output": redact(s.output),
            "evidence": redact(s.evidence),
            "error": redact(s.error),
            "started_at": s.started_at,
            "finished_at": s.finished_at,
            "duration_ms": s.duration_ms,
        }
        for s in Step.objects.filter(run=run).order_by("id")
    ]
    return {
        **run_summary(run),
        "context": redact(run.context),
        "plan": run.plan,
        "steps": steps,
        "forks": list(
            run.forks.filter(forked_at_seq__isnull=False)
            .order_by("id")
            .values_list("id", flat=True)
        ),
        "children": list(
            run.forks.exclude(parent_node="").order_by("id").values_list("id", flat=True)
        ),
        "active_nodes": active_nodes(run),
        "node_states": node_states(run, steps),
        "decisions": redact((run.graph or {}).get("decisions") or {}),
        "visits": (run.graph or {}).get("visits") or {},
    }


def active_nodes(run: Run) -> list[str]:
    """Return the node paths in flight or waiting (none when the run is not active)."""
    if run.status not in ("running", "waiting", "queued") or not run.current_node:
        return []
    from workflows.engine.lanes import active_paths

    return active_paths(run) or [run.current_node]


def node_states(run: Run, steps: list[dict] | None = None) -> dict[str, str]:
    """Return each node path's state: done, running, waiting, failed, skipped or pending.

    What a picture of the plan colours its boxes by. A node is done when a
    step of it succeeded or a person approved it (or the run moved past a
    branch it took); the current node is running or waiting; a failed run's
    current node failed; a finished run's untouched nodes were skipped.
    """
    # The app above this one, named rather than imported (tests/test_boundaries.py).
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")

    states: dict[str, str] = {}
    for step in steps if steps is not None else run_detail(run)["steps"]:
        if step["status"] == "succeeded":
            states[step["node_path"]] = "done"
    decided = ApprovalRequest.objects.filter(run=run, status="approved").values_list(
        "node_path", "node_id", "purpose"
    )
    for node_path, node_id, purpose in decided:
        if purpose in ("approval_node", "input_node"):
            states[node_path or node_id] = "done"
    taken = Event.objects.filter(
        run=run, type__in=("branch.taken", "block.finished", "child.finished")
    ).values_list("data", flat=True)
    for data in taken:
        states[data.get("node_path") or data.get("node", "")] = "done"
    from workflows.engine.lanes import active_paths

    waiting = set(
        ApprovalRequest.objects.filter(run=run, status="pending").values_list(
            "node_path", flat=True
        )
    )
    for path in active_paths(run) if not run.is_terminal else []:
        state = "waiting" if path in waiting else "running"
        states[path] = state
        # The blocks nested in lanes that lead to it are in progress too.
        from workflows.replay_lanes import split_lane

        lane = path.rpartition("/")[0]
        while "/" in lane or lane.endswith("]"):
            block = split_lane(lane)[0]
            if "/" not in block:
                break  # the run's own block: its current node, below
            if states.get(block) != "running":
                states[block] = state
            lane = block.rpartition("/")[0]
    current = run.current_node
    if current and (run.graph or {}).get("block"):
        states.setdefault(current, "running" if run.status != "waiting" else "waiting")
    elif current:
        if run.status == "waiting":
            states[current] = "waiting"
        elif run.status in ("running", "queued"):
            states[current] = "running" if run.status == "running" else "pending"
        elif run.status == "failed":
            states[current] = "failed"
    for node in run.nodes:
        if node["id"] not in states:
            states[node["id"]] = "skipped" if run.is_terminal else "pending"
    return states


def event_out(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "run": event.run_id,
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor_label,
        "at": event.at,
        "data": redact(event.data),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "correlation_id": event.correlation_id,
    }
