"""Runs: create, cancel, fail, reroute and resume them; their status and lock."""

from __future__ import annotations

import copy
import logging
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from agentos_common import limits
from workflows import executor_config, hooks, plan_review
from workflows.context_policy import context_policy_errors
from workflows.events import event_append
from workflows.exceptions import RunNotFound
from workflows.models import Run, Step, Workflow
from workflows.plans import PlanError, PlanInvalid, validate_plan
from workflows.resume import ResumeGrant
from workflows.services.context import _context_errors, merge_values
from workflows.services.steps import step_mark_done
from workflows.states import RunMode, RunStatus, check_transition, mode_refusal

logger = logging.getLogger(__name__)


def enqueue_advance(run_id: int, correlation_id: object = None) -> None:
    """Queue a worker task that advances the run (after commit, or see `enqueue_on_commit`).

    A caller that has the run passes its correlation id: the task carries it
    to the worker's log context (observability.signals), which otherwise
    reads it from the run, a query on the path of the resume.
    """
    from django_q.tasks import async_task

    from workflows.broker import queues_in_transaction, task_broker

    carried = {"correlation_id": str(correlation_id)} if correlation_id else {}
    try:
        async_task(
            "workflows.tasks.advance_run",
            run_id,
            task_name=f"run-{run_id}",
            group="runs",
            save=False,
            broker=task_broker(),
            **carried,
        )
    except Exception:
        if queues_in_transaction(router.db_for_write(Run)):
            raise  # the task's row is part of the change: neither commits without the other
        # The broker is away (Redis restarting): the change is committed.
        logger.exception("run %s: could not queue its task; the re-queue schedule will", run_id)


def enqueue_on_commit(run: Run) -> None:
    """Queue the run's task with the caller's transaction.

    With the ORM broker on the run's database the task's row is written in
    the transaction itself: a committed change always has its task (no
    window for a crash between the commit and the queuing, which only the
    re-queue schedule would close), a rolled-back one none; the pusher is
    nudged once it is committed. With Redis the task is pushed after the
    commit, by the first commit hook registered after the run's events
    (the notifications of a decision are registered after it).
    """
    from workflows.broker import queues_in_transaction

    run_id, correlation_id = run.pk, run.correlation_id
    using = router.db_for_write(Run)
    if queues_in_transaction(using):
        enqueue_advance(run_id, correlation_id)
    else:
        transaction.on_commit(lambda: enqueue_advance(run_id, correlation_id), using=using)


def lock_run(run_id: int) -> Run:
    # select_for_update locks the row on PostgreSQL; SQLite ignores it, but
    # there IMMEDIATE transactions already serialise every writer.
    try:
        return Run.objects.select_for_update().get(pk=run_id)
    except Run.DoesNotExist:
        raise RunNotFound(f"no run {run_id}") from None


def set_status(run: Run, target: str) -> str:
    source = run.status
    check_transition(source, target)
    run.status = target
    if target in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        run.finished_at = timezone.now()
        run.lease_owner, run.lease_expires_at = "", None
        if run.parent_node:
            from workflows.engine.children import child_ended

            child_ended(run)  # its parent waits on it: wake it after this commit
    return source


def run_create(
    *,
    workflow: Workflow | None = None,
    plan: dict | None = None,
    context: dict | None = None,
    mode: str | None = None,
    requester: Any = None,
    idempotency_key: str = "",
    batch: Any = None,
    schedule: Any = None,
    review_plan: bool = False,
    request_digest: str = "",
) -> Run:
    """Validate and queue a run of a workflow (its current version) or of a bare plan.

    A non-empty `idempotency_key` is unique per requester: a second run with
    the same key fails with IntegrityError (see `run_create_once`).
    With `review_plan` (a plan from the planner), an assisted or interactive
    run first pauses for a person to review, edit or reject the plan; a bare
    plan with any action that is not low-risk always does, in every mode.
    A run may use its workflow's mode or a stricter one, never a weaker one.
    """
    if (workflow is None) == (plan is None):
        raise PlanInvalid([PlanError("", "workflow", "give either a workflow or a plan")])
    if limits.value_depth(context) > limits.MAX_DEPTH:  # before deepcopy recurses
        raise PlanInvalid([PlanError("", "context", str(limits.TooDeep()))])
    context = copy.deepcopy(context or {})
    if not isinstance(context, dict):
        raise PlanInvalid([PlanError("", "context", "must be an object")])
    if mode is not None and mode not in RunMode.values:
        raise PlanInvalid([PlanError("", "mode", "must be autonomous, assisted or interactive")])
    if workflow is not None:
        plan, inputs = copy.deepcopy(workflow.plan), workflow.inputs_schema
        # An input left out takes its schema default, as the start form shows it.
        for key, prop in (inputs.get("properties") or {}).items():
            if key not in context and isinstance(prop, dict) and "default" in prop:
                context[key] = copy.deepcopy(prop["default"])
        errors = _context_errors(inputs, context)
        errors += validate_plan(
            plan,
            registry=executor_config.registry(),
            policy=executor_config.policy(),
            inputs_schema=inputs,
            stored=True,
        )
        refusal = mode_refusal(mode, workflow.mode)
        if refusal:
            errors.append(PlanError("", "mode", refusal))
        mode = mode or workflow.mode
    else:
        inputs = {"type": "object", "properties": {}}
        errors = validate_plan(
            plan, registry=executor_config.registry(), policy=executor_config.policy()
        )
        mode = mode or RunMode.ASSISTED
    # Parameters built from the starting inputs are checked against the
    # policy (roots, hosts) now, not when their step runs.
    errors += context_policy_errors(
        plan, context, registry=executor_config.registry(), policy=executor_config.policy()
    )
    if errors:
        raise PlanInvalid(errors)
    assert plan is not None
    # Each child's version is pinned now: the parent runs what was validated.
    from workflows.engine.children import pin_versions

    plan = pin_versions(plan)
    # A bare plan was written by a planner or an integration, not by someone
    # who authored a stored workflow: unless every action is low-risk, a
    # person other than its requester reviews it first, whatever the mode.
    review = (review_plan and mode != RunMode.AUTONOMOUS) or (
        workflow is None and plan_review.needs_person(plan, executor_config.registry())
    )
    grant = (
        ResumeGrant(node=plan["nodes"][0]["id"], position=0, plan_review=plan_review.PENDING)
        if review
        else ResumeGrant()
    )
    with transaction.atomic():
        run = Run.objects.create(
            workflow=workflow,
            workflow_version=workflow.version if workflow else None,
            plan=plan,
            inputs_schema=inputs,
            mode=mode,
            context=context,
            requester=requester,
            current_node=plan["nodes"][0]["id"],
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            batch=batch,
            schedule=schedule,
            resume_grant=grant.to_json(),
        )
        event_append(
            run=run,
            type="run.created",
            actor=requester,
            data={
                "workflow": workflow.slug if workflow else None,
                "version": run.workflow_version,
                "mode": mode,
                "context": context,
                "nodes": [node["id"] for node in plan["nodes"]],
                **({"batch": batch.pk} if batch is not None else {}),
                **({"schedule": schedule.name} if schedule is not None else {}),
                **(
                    {"review_plan": True, "plan_digest": plan_review.plan_digest(plan)}
                    if review
                    else {}
                ),
            },
        )
        run.save(update_fields=["last_seq", "last_hash"])
        enqueue_on_commit(run)
    return run


def run_cancel(*, run_id: int, actor: Any, reason: str = "") -> Run:
    """Cancel a run that has not ended; a step in flight is killed by its worker."""
    with transaction.atomic():
        run = lock_run(run_id)
        source = set_status(run, RunStatus.CANCELLED)
        event_append(
            run=run,
            type="run.cancelled",
            actor=actor,
            save_head=False,
            data={"from": source, "reason": reason, "node": run.current_node},
        )
        hooks.close_requests(run=run, actor=actor, reason=f"run cancelled: {reason}".strip())
        _cancel_children(run, actor=actor, reason=reason or "cancelled")
        run.save_state()
    return run


def _cancel_children(run: Run, *, actor: Any, reason: str) -> None:
    """Cancel a run's child runs (and theirs) in the caller's transaction."""
    from workflows.engine.children import cancel_children

    cancel_children(run, actor=actor, reason=reason)


def run_fail(*, run: Run, actor: Any, error: str, node: str = "") -> None:
    """Fail a locked run with a reason (inside the caller's transaction)."""
    source = set_status(run, RunStatus.FAILED)
    run.error = error
    event_append(
        run=run,
        type="run.failed",
        actor=actor,
        save_head=False,
        data={"from": source, "error": error, "node": node or run.current_node},
    )
    hooks.close_requests(run=run, actor=actor, reason=error)
    _cancel_children(run, actor=actor, reason=f"failed: {error}"[:500])
    run.save_state()


def run_reroute(*, run: Run, actor: Any, node_id: str, position: int, target: int) -> None:
    """Send a waiting run from a rejected gate along its `on_reject` (caller's transaction)."""
    from workflows.engine import flow

    if run.position != position or run.current_node != node_id:
        raise PlanInvalid([PlanError(node_id, "node", "the run is no longer at this node")])
    source = set_status(run, RunStatus.QUEUED)
    flow.move_to(run, target)
    event_append(
        run=run,
        type="run.resumed",
        actor=actor,
        data={
            "from": source,
            "node": node_id,
            "purpose": "on_reject",
            "resolution": "",
            "values": {},
            "next_node": run.current_node,
        },
        save_head=False,
    )
    run.save_state()
    enqueue_on_commit(run)


def run_continue(
    *,
    run: Run,
    actor: Any,
    node_id: str,
    position: int,
    purpose: str,
    values: dict | None = None,
    state: dict | None = None,
    step_id: int | None = None,
    resolution: str = "",
) -> None:
    """Resume a waiting run after a person's decision (inside the caller's transaction).

    `purpose` says what the request was for: an approval or input node (the
    run moves past it), a missing value or an action's question (the values
    join the context and the node runs), the mode's review of an action, or
    an unknown outcome (retry the step, or mark it done with its outputs).
    """
    if run.position != position or run.current_node != node_id:
        raise PlanInvalid([PlanError(node_id, "node", "the run is no longer at this node")])
    values = values or {}
    source = set_status(run, RunStatus.QUEUED)
    if purpose in ("approval_node", "input_node", "missing", "action_input"):
        merge_values(run.context, values)
    grant = run.grant.for_node(node_id, position)
    if purpose in ("approval_node", "input_node"):
        from workflows.engine import flow

        flow.move_on(run)
        grant = ResumeGrant()
    elif purpose == "mode_gate":
        grant = grant.with_(approved=True)
    elif purpose == "plan_review":
        grant = ResumeGrant(
            node=node_id,
            position=position,
            plan_digest=plan_review_apply(run=run, actor=actor, values=values, state=state or {}),
        )
    elif purpose == "action_input":
        grant = grant.with_(resume=True, state=state or {}, values=values)
    elif purpose == "unknown_outcome" and resolution == "retry":
        grant = grant.with_(retry=True)
    elif purpose == "unknown_outcome" and resolution == "mark_done":
        step = Step.objects.select_for_update().get(pk=step_id, run=run)
        step_mark_done(run=run, step=step, output=values, actor=actor)
        grant = ResumeGrant()
    run.set_grant(grant)
    run.current_node = run.nodes[run.position]["id"] if run.position < len(run.nodes) else ""
    event_append(
        run=run,
        type="run.resumed",
        actor=actor,
        data={
            "from": source,
            "node": node_id,
            "purpose": purpose,
            "resolution": resolution,
            "values": values,
            "next_node": run.current_node,
        },
        save_head=False,
    )
    run.save_state()
    enqueue_on_commit(run)


def plan_review_apply(*, run: Run, actor: Any, values: dict, state: dict) -> str:
    """Apply a reviewer's parameter edits to a run's plan; return the approved digest.

    The review was opened for one plan (its digest); a run whose plan has
    changed since is refused. Edits are re-validated as a whole before the
    plan is replaced, so nothing is half-applied.
    """
    registry = executor_config.registry()
    if state.get("digest") != plan_review.plan_digest(run.plan):
        raise PlanInvalid(
            [
                PlanError(
                    "",
                    "plan",
                    "the plan changed since this review was opened; it cannot be approved",
                )
            ]
        )
    edited, changes = plan_review.apply_edits(run.plan, values, registry)
    if not changes:
        return state["digest"]
    errors = validate_plan(
        edited,
        registry=registry,
        policy=executor_config.policy(),
        inputs_schema=run.inputs_schema,
        stored=run.workflow_id is not None,
    )
    if errors:
        raise PlanInvalid(
            [
                PlanError(
                    e.node,
                    f"{e.node}.{e.field.removeprefix('params.')}"
                    if e.field.startswith("params.")
                    else e.field,
                    e.message,
                )
                for e in errors
            ]
        )
    digest = plan_review.plan_digest(edited)
    event_append(
        run=run,
        type="run.plan_edited",
        actor=actor,
        data={"before": state["digest"], "after": digest, "changes": changes},
    )
    run.plan = edited
    run.save(update_fields=["plan"])
    return digest
