"""Idempotent run creation and forks: the run services integrations rely on."""

from __future__ import annotations

import copy
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agentos_common.canonical import canonical_digest
from workflows import executor_config, plan_review
from workflows.events import event_append
from workflows.exceptions import IdempotencyKeyReused
from workflows.models import Event, Run, Step
from workflows.plans import PlanError, PlanInvalid
from workflows.replay import ReplayError, state_at
from workflows.replay_lanes import lane_state
from workflows.resume import ResumeGrant
from workflows.services import (
    _context_errors,
    enqueue_advance,
    lock_run,
    merge_values,
    run_create,
)
from workflows.states import StepStatus

MAX_IDEMPOTENCY_KEY = 200


def _request_digest(request: dict[str, Any]) -> str:
    """Return the SHA-256 of what a start request asks for."""
    workflow = request.get("workflow")
    asked = {
        "workflow": workflow.slug if workflow is not None else None,
        "plan": request.get("plan"),
        "context": request.get("context") or {},
        "mode": request.get("mode"),
        "review_plan": bool(request.get("review_plan")),
    }
    return canonical_digest(asked, default=str)


def _same_request(run: Run, digest: str) -> Run:
    # Runs started before digests were kept have none: they keep answering.
    if run.request_digest and run.request_digest != digest:
        raise IdempotencyKeyReused(
            f"this Idempotency-Key already started run {run.pk} for a different request; "
            "send the same request to read that run, or a new key to start another"
        )
    return run


def run_create_once(*, idempotency_key: str, requester: Any, **kwargs: Any) -> tuple[Run, bool]:
    """Create a run once per (requester, key); return (run, created).

    The unique constraint decides races: of two concurrent requests with the
    same key, one inserts and the other reads the winner's run. The key is
    bound to its request: the same key with another workflow, plan, context
    or mode raises IdempotencyKeyReused instead of returning the first run.
    """
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise PlanInvalid(
            [PlanError("", "Idempotency-Key", f"at most {MAX_IDEMPOTENCY_KEY} characters")]
        )
    if not idempotency_key:
        return run_create(requester=requester, **kwargs), True
    digest = _request_digest(kwargs)
    existing = Run.objects.filter(requester=requester, idempotency_key=idempotency_key).first()
    if existing is not None:
        return _same_request(existing, digest), False
    try:
        return run_create(
            requester=requester, idempotency_key=idempotency_key, request_digest=digest, **kwargs
        ), True
    except IntegrityError:
        existing = Run.objects.filter(requester=requester, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _same_request(existing, digest), False


def run_fork(*, run_id: int, at_seq: int, context: dict | None = None, actor: Any) -> Run:
    """Start a new run from the state of run `run_id` right after event `at_seq`.

    The context is rebuilt from the events, `context` overrides merge into
    it, completed steps up to that point are carried over (never re-run),
    and the new run starts at the node the parent was at. Both chains record
    the fork: `run.created` (with `forked_from`) and the parent's `run.forked`.
    The person who forks is the new run's requester. Nothing approved in the
    parent carries over: a bare plan is reviewed again, and a gate the fork
    starts past is asked again before its steps run (four-eyes against the
    person who forked). Inside a block the lanes' progress is carried
    (docs/graphs.md, "Time machine and forks").
    """
    overrides = copy.deepcopy(context or {})
    if not isinstance(overrides, dict):
        raise PlanInvalid([PlanError("", "context", "must be an object")])
    parent = Run.objects.select_related("workflow").filter(pk=run_id).first()
    if parent is None:
        from workflows.services import RunNotFound

        raise RunNotFound(f"no run {run_id}")
    try:
        state = state_at(parent, at_seq)
        block = lane_state(state, parent.nodes) if state.block else None
        if state.block and block is None:
            raise ReplayError(
                f"event {at_seq} is inside the block {state.block!r}, not in the plan"
            )
    except ReplayError as exc:
        raise PlanInvalid([PlanError("", "at_seq", str(exc))]) from None
    new_context = state.context
    merge_values(new_context, overrides)
    if overrides:
        # Only the overrides are checked: the rebuilt context was valid when
        # the parent ran, and later outputs may legitimately go beyond inputs.
        keys = _top_keys(overrides)
        errors = [
            e
            for e in _context_errors(parent.inputs_schema or {}, new_context)
            if e.field.partition(".")[2].split(".")[0] in keys
        ]
        if errors:
            raise PlanInvalid(errors)
    nodes = parent.nodes
    position = state.position
    review = position < len(nodes) and _needs_plan_review(parent)
    grant = (
        ResumeGrant(node=nodes[position]["id"], position=position, plan_review=plan_review.PENDING)
        if review
        else ResumeGrant()
    )
    with transaction.atomic():
        run = Run.objects.create(
            workflow=parent.workflow,
            workflow_version=parent.workflow_version,
            plan=parent.plan,
            inputs_schema=parent.inputs_schema,
            mode=parent.mode,
            context=new_context,
            requester=actor,
            parent=parent,
            forked_at_seq=at_seq,
            position=position,
            current_node=nodes[position]["id"] if position < len(nodes) else "",
            resume_grant=grant.to_json(),
            graph={
                key: value
                for key, value in (
                    ("visits", state.visits),
                    ("decisions", state.decisions),
                    ("block", block),
                )
                if value
            },
        )
        carried = _carry_steps(parent, run, state.completed, state.completed_steps, position)
        in_flight = (
            _carry_lanes_in_flight(parent, run, at_seq, state)
            if block
            else _carry_in_flight(parent, run, at_seq, position)
        )
        event_append(
            run=run,
            type="run.created",
            actor=actor,
            data={
                "workflow": parent.workflow.slug if parent.workflow_id else None,
                "version": run.workflow_version,
                "mode": run.mode,
                "context": new_context,
                "nodes": [node["id"] for node in nodes],
                "position": position,
                "forked_from": {"run": parent.pk, "seq": at_seq},
                "overrides": overrides,
                "completed": {node: state.completed[node] for node in carried},
                "completed_steps": carried,
                **({"graph": run.graph} if run.graph else {}),
                **(
                    {"review_plan": True, "plan_digest": plan_review.plan_digest(run.plan)}
                    if review
                    else {}
                ),
                **({"in_flight": in_flight} if in_flight else {}),
            },
        )
        run.save(update_fields=["last_seq", "last_hash"])
        locked_parent = lock_run(parent.pk)
        event_append(
            run=locked_parent,
            type="run.forked",
            actor=actor,
            data={
                "child": run.pk,
                "at_seq": at_seq,
                "overrides": overrides,
            },
        )
        locked_parent.save(update_fields=["last_seq", "last_hash"])
        transaction.on_commit(lambda: enqueue_advance(run.pk, run.correlation_id))
    return run


def _needs_plan_review(parent: Run) -> bool:
    """Return whether a fork of `parent` pauses for its plan's review first.

    A bare plan that needed a review needs one in every fork: the parent's
    review was given to the parent's requester for the parent's context.
    Gates inside the plan are asked again by the engine (see decide).
    """
    if parent.workflow_id is not None:
        return False
    if plan_review.needs_person(parent.plan, executor_config.registry()):
        return True
    first = Event.objects.filter(run=parent, seq=1).values_list("data", flat=True).first()
    return bool((first or {}).get("review_plan"))


# Events that end a step's attempt; a step started and not yet ended by one of
# these at the fork point was in flight.
STEP_ENDED = (
    "step.succeeded",
    "step.failed",
    "step.cancelled",
    "step.interrupted",
    "step.needs_input",
    "step.marked_done",
)


def _carry_in_flight(parent: Run, run: Run, at_seq: int, position: int) -> dict:
    """Carry a non-idempotent step that was in flight at the fork point as unknown.

    The parent may have done it (it finished after the fork point, or nobody
    knows): run again blindly, the fork would repeat it. Carried with an
    unknown outcome, the engine asks a person whether it happened (retry,
    mark done or fail), as after a worker's death. Idempotent steps simply
    run again.
    """
    if position >= len(run.nodes) or run.nodes[position].get("type", "action") != "action":
        return {}
    node = run.nodes[position]
    try:
        if executor_config.registry().get(node["action"]).idempotent:
            return {}
    except Exception:  # an action gone from the registry fails its step anyway
        return {}
    started = (
        Event.objects.filter(
            run=parent, seq__lte=at_seq, type="step.started", data__node=node["id"]
        )
        .order_by("-seq")
        .first()
    )
    if (
        started is None
        or Event.objects.filter(
            run=parent,
            seq__gt=started.seq,
            seq__lte=at_seq,
            type__in=STEP_ENDED,
            data__step=started.data.get("step"),
        ).exists()
    ):
        return {}
    original = Step.objects.filter(pk=started.data.get("step"), run=parent).first()
    visit = int((run.graph or {}).get("visits", {}).get(node["id"], 1))
    step = Step.objects.create(
        run=run,
        node_id=node["id"],
        node_path=node["id"],
        position=position,
        visit=visit,
        attempt=1,
        action=node["action"],
        params=original.params if original else started.data.get("params") or {},
        status=StepStatus.UNKNOWN,
        idempotency_key=f"run{run.pk}-{node['id']}-{position}"
        + (f"-v{visit}" if visit > 1 else ""),
        evidence={"carried_from": {"run": parent.pk, "step": started.data.get("step")}},
        error=f"in flight in run {parent.pk} when it was forked: it may have happened",
        started_at=timezone.now(),
    )
    return {"node": node["id"], "step": step.pk, "parent_step": started.data.get("step")}


def _carry_lanes_in_flight(parent: Run, run: Run, at_seq: int, state: Any) -> dict:
    """Carry the lanes' non-idempotent steps in flight at the fork point as unknown.

    As at the top of a plan: each one's lane is at that node in the fork,
    and the engine asks a person whether it happened before the lane goes
    on (retry, mark done or fail). Idempotent ones simply run again; steps
    the lanes moved past are never run again (the lanes' positions carry
    past them).
    """
    began = (
        Event.objects.filter(run=parent, seq__lte=at_seq, type="block.started")
        .filter(data__node_path=state.block)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    ) or 0
    started = Event.objects.filter(
        run=parent, seq__gt=began, seq__lte=at_seq, type="step.started"
    ).order_by("seq")
    ended = set(
        Event.objects.filter(
            run=parent, seq__gt=began, seq__lte=at_seq, type__in=STEP_ENDED
        ).values_list("data__step", flat=True)
    )
    registry = executor_config.registry()
    carried: dict[str, dict] = {}
    for event in started:
        data = event.data or {}
        path = data.get("node_path") or ""
        if data.get("step") in ended or "/" not in path:
            continue
        try:
            if registry.get(data.get("action", "")).idempotent:
                continue
        except Exception:  # an action gone from the registry fails its step anyway
            continue
        lane_path, _, node_id = path.rpartition("/")
        lane = state.lanes.get(lane_path) or {}
        if lane.get("node") != node_id or lane.get("done"):
            continue
        visit = int((lane.get("visits") or {}).get(node_id, 1))
        original = Step.objects.filter(pk=data.get("step"), run=parent).first()
        step = Step.objects.create(
            run=run,
            node_id=node_id,
            node_path=path,
            position=original.position if original else 0,
            visit=visit,
            attempt=1,
            action=data.get("action", ""),
            params=original.params if original else data.get("params") or {},
            status=StepStatus.UNKNOWN,
            idempotency_key=f"run{run.pk}-{path}-v{visit}",
            evidence={"carried_from": {"run": parent.pk, "step": data.get("step")}},
            error=f"in flight in run {parent.pk} when it was forked: it may have happened",
            started_at=timezone.now(),
        )
        carried[path] = {"node": node_id, "step": step.pk, "parent_step": data.get("step")}
    return {"lanes": carried} if carried else {}


def _top_keys(values: dict) -> set[str]:
    return {key.split(".")[0] for key in values}


def _carry_steps(
    parent: Run, run: Run, completed: dict[str, dict], step_ids: dict[str, int], position: int
) -> dict[str, int]:
    """Copy the parent's completed steps before `position`; return node -> new step id."""
    carried: dict[str, int] = {}
    index = {node["id"]: i for i, node in enumerate(parent.nodes)}
    originals = {s.pk: s for s in Step.objects.filter(run=parent, pk__in=step_ids.values())}
    now = timezone.now()
    for node_id, output in completed.items():
        pos = index.get(node_id)
        # With jumps a completed node may sit later in the list than the
        # fork point; the node at the fork point itself is never complete.
        if pos is None or pos == position:
            continue
        original = originals.get(step_ids.get(node_id, 0))
        step = Step.objects.create(
            run=run,
            node_id=node_id,
            node_path=node_id,
            position=pos,
            attempt=1,
            action=original.action if original else parent.nodes[pos].get("action", ""),
            params=original.params if original else {},
            status=StepStatus.SUCCEEDED,
            output=output,
            idempotency_key=f"run{run.pk}-{node_id}-{pos}",
            evidence={"carried_from": {"run": parent.pk, "step": step_ids.get(node_id)}},
            error="",
            started_at=now,
            finished_at=now,
            duration_ms=0,
        )
        carried[node_id] = step.pk
    return carried
