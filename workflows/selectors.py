"""Reads for the API and the admin: runs, events, in the shapes they are shown."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agentos_common.redaction import redact as redact_secrets
from workflows import executor_config
from workflows.models import Event, Run, Step


def redact(value: Any) -> Any:
    """Return stored data as a person may see it: `agentos_common.redaction.redact`
    with this deployment's secret values. Every surface shows data through it."""
    return redact_secrets(value, executor_config.all_secret_values())


def runs_list(*, status: str | None = None, workflow: str | None = None) -> QuerySet[Run]:
    """Return runs, newest first, narrowed by status and workflow slug."""
    runs = Run.objects.select_related("workflow", "requester").order_by("-created_at", "-id")
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
            "position": s.position,
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
        "forks": list(run.forks.order_by("id").values_list("id", flat=True)),
    }


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
