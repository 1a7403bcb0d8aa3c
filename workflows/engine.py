"""The engine: advance a run node by node until it pauses, ends or runs out of time.

One call holds the run's lease for its whole stay. An action runs outside
any transaction in its own process; its result is committed with its event,
the context changes and the new position, and the next node is decided and
started, in one short transaction (`_record`), so a step costs one commit.
Every commit re-checks the lease, so a worker that lost it writes nothing.
The frozen plan is read once per call: it cannot change while the run is
running (only a waiting run's plan review edits it), so later locks skip it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from executors.base import ActionContext
from executors.runner import ActionResult, scrub
from executors.scrubbing import scrub_secrets_in
from workflows import actions, hooks, plan_review
from workflows.events import event_append
from workflows.guards import guard_entry, guards_after, still_approved
from workflows.leases import (
    lease_acquire,
    lease_extend_on,
    lease_holds,
    lease_release,
    lease_renew,
    worker_id,
)
from workflows.models import Run, Step
from workflows.plans import InputNode, node_fields_schema
from workflows.reconnect import lease_heartbeat, quietly, retrying
from workflows.services import (
    RunNotFound,
    lock_run,
    set_status,
    apply_outputs,
    enqueue_advance,
    run_fail,
)
from workflows.states import ACTIVE, TERMINAL, RunMode, RunStatus, StepStatus
from workflows.templating import is_exact_reference, render

logger = logging.getLogger(__name__)

FAILED_ATTEMPT = frozenset({StepStatus.FAILED, StepStatus.CRASHED, StepStatus.TIMED_OUT,
                            StepStatus.INTERRUPTED})
RESULT_STATUS = {
    "succeeded": StepStatus.SUCCEEDED,
    "failed": StepStatus.FAILED,
    "crashed": StepStatus.CRASHED,
    "timed_out": StepStatus.TIMED_OUT,
    "killed": StepStatus.INTERRUPTED,
    "needs_input": StepStatus.NEEDS_INPUT,
}


class LeaseLost(Exception):
    """Another worker owns the run now; write nothing."""


class _Stop:
    pass


STOP = _Stop()


@dataclass
class Wait:
    seconds: float


@dataclass
class Launch:
    run_id: int
    step_id: int
    node: dict
    action: str
    params: dict
    attempt: int
    idempotency_key: str
    timeout_s: float
    clearance: dict = field(default_factory=dict)
    step: Step | None = None


# --- the loop ----------------------------------------------------------------


def run_advance(*, run_id: int, owner: str | None = None) -> None:
    """Advance a run while this worker holds its lease."""
    owner = owner or worker_id()
    # A first zygote start can take seconds on a busy machine: not on the
    # lease's clock, or the lease could lapse before the first heartbeat.
    actions.runner().start()
    # Each transaction is retried while the database is away (a restart):
    # each one re-checks the lease and the step before it writes.
    if not retrying(lease_acquire, run_id, owner):
        return
    deadline = time.monotonic() + settings.AGENTOS_TASK_BUDGET_S
    held = _Held(run_id=run_id, owner=owner)
    try:
        outcome = retrying(_next, held)
        while True:
            if outcome is STOP:
                return
            if isinstance(outcome, Wait):
                if not _sleep_renewing(run_id, owner, outcome.seconds):
                    return
                outcome = None
            elif isinstance(outcome, Launch):
                result = _execute(outcome, owner)
                outcome = retrying(_record, held, outcome, result,
                                   go_on=time.monotonic() <= deadline)
            if outcome is None:
                if time.monotonic() > deadline:
                    retrying(_requeue, run_id, owner)
                    return
                outcome = retrying(_next, held)
    except LeaseLost:
        logger.warning("run %s: lease lost by %s; stopping", run_id, owner)
    finally:
        # Unreleased, the lease simply expires.
        quietly(lease_release, run_id, owner, default=None)


@dataclass
class _Held:
    """What one worker's stay on a run keeps between its transactions."""

    run_id: int
    owner: str
    plan: dict | None = None

    def lock(self) -> Run:
        """Lock the run row; after the first time, without the frozen plan."""
        if self.plan is None:
            run = lock_run(self.run_id)
            self.plan = run.plan
            return run
        try:
            run = (Run.objects.select_for_update().defer("plan", "inputs_schema")
                   .get(pk=self.run_id))
        except Run.DoesNotExist:
            raise RunNotFound(f"no run {self.run_id}") from None
        run.plan = self.plan
        return run


def _sleep_renewing(run_id: int, owner: str, seconds: float) -> bool:
    until = time.monotonic() + seconds
    step = max(0.2, settings.AGENTOS_LEASE_SECONDS / 3)
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(step, left))
        if not quietly(lease_renew, run_id, owner, default=True):
            return False
    return True


def _requeue(run_id: int, owner: str) -> None:
    with transaction.atomic():
        run = lock_run(run_id)
        if not lease_holds(run, owner) or run.status != RunStatus.RUNNING:
            return
        set_status(run, RunStatus.QUEUED)
        _append(run, type="run.requeued", data={"reason": "task time budget used"})
        _save(run)
        transaction.on_commit(lambda: enqueue_advance(run_id))


# --- deciding the next thing to do -------------------------------------------


def _clearance(run: Run) -> dict:
    clear = run.clearance or {}
    if clear.get("node") == run.current_node and clear.get("position") == run.position:
        return clear
    return {}


def _needs_review(mode: str, risk: str) -> bool:
    return mode == RunMode.INTERACTIVE or (mode == RunMode.ASSISTED and risk == "high")


def _next(held: _Held) -> Any:
    owner = held.owner
    with transaction.atomic():
        run = held.lock()
        if not lease_holds(run, owner):
            raise LeaseLost
        if run.status == RunStatus.QUEUED:
            set_status(run, RunStatus.RUNNING)
            run.started_at = run.started_at or timezone.now()
            _append(run, "run.running", {"worker": owner, "node": run.current_node})
        if run.status != RunStatus.RUNNING:
            _save(run)
            return STOP
        lease_extend_on(run)
        outcome = _decide(run, owner)
        _save(run)
        return outcome


def _save(run: Run) -> None:
    """Save the locked run; one that stops running gives its lease back with it.

    Releasing in the same commit as the pause (or end, or re-queue) matters:
    a decision can resume the run the moment the pause is visible, and the
    task it queues must find the lease free, not still ours.
    """
    if run.status != RunStatus.RUNNING:
        run.lease_owner, run.lease_expires_at = "", None
    run.save_state()


def _append(run: Run, type: str, data: dict) -> None:
    """Append a run event; the engine always saves the locked run afterwards."""
    event_append(run=run, type=type, data=data, save_head=False)


def _decide(run: Run, owner: str, *, new_position: bool = False) -> Any:
    nodes = run.nodes
    if run.position >= len(nodes):
        run.current_node = ""
        set_status(run, RunStatus.SUCCEEDED)
        _append(run, type="run.succeeded", data={"context": run.context})
        return STOP
    node = nodes[run.position]
    run.current_node = node["id"]
    if _plan_review_pending(run):
        return STOP
    kind = node.get("type", "action")
    if kind == "approval":
        _pause(run, purpose="approval_node", kind="approval",
               title=_text(node["title"], run.context), description=node.get("description", ""),
               fields={"type": "object", "properties": {}}, assign_to=node.get("assign_to"),
               guards=guards_after(nodes, run.position, run.context), options=_ask_options(node))
        return STOP
    if kind == "input":
        schema = node_fields_schema(InputNode.model_validate(node))
        _pause(run, purpose="input_node", kind="input",
               title=_text(node["title"], run.context), description=node.get("description", ""),
               fields=schema, assign_to=node.get("assign_to"), options=_ask_options(node))
        return STOP
    return _decide_action(run, node, owner, new_position=new_position)


def _ask_options(node: dict) -> dict:
    keys = ("quorum", "due_in_s", "on_timeout", "escalate_to")
    return {key: node[key] for key in keys if node.get(key) is not None}


def _plan_review_pending(run: Run) -> bool:
    """Pause for the plan's review, or stop a run whose approved plan changed."""
    clear = run.clearance or {}
    if clear.get("plan_review") == plan_review.PENDING:
        digest = plan_review.plan_digest(run.plan)
        _pause(run, purpose="plan_review", kind="approval",
               title=f"Review the plan ({len(run.nodes)} steps) before it runs",
               description=plan_review.review_table(run.plan, actions.registry()),
               fields=plan_review.review_fields(run.plan, actions.registry()),
               state={"digest": digest, "plan": run.plan,
                      "rows": plan_review.review_rows(run.plan, actions.registry())})
        return True
    approved = clear.get("plan_digest")
    if approved and approved != plan_review.plan_digest(run.plan):
        run_fail(run=run, actor=None, error="the plan differs from the one approved")
        return True
    return False


def _text(template: str, context: dict) -> str:
    return str(render(template, context, set()))


def _decide_action(run: Run, node: dict, owner: str, *, new_position: bool = False) -> Any:
    action = actions.registry().get(node["action"])
    label = node.get("title") or f"{node['id']} ({node['action']})"
    missing: set[str] = set()
    params = render(node.get("params", {}), run.context, missing)
    if missing:
        fields = _missing_fields(run, node, action, sorted(missing))
        _pause(run, purpose="missing", kind="input",
               title=f"{_text(label, run.context)}: a value is missing",
               description="Supply " + ", ".join(sorted(missing)) + " to continue.",
               fields=fields)
        return STOP
    clear = _clearance(run)
    if _needs_review(run.mode, action.risk) and not clear.get("approved"):
        _pause(run, purpose="mode_gate", kind="approval",
               title=f"Run {node['action']} ({node['id']})?",
               description=action.description, fields={"type": "object", "properties": {}},
               state={"action": node["action"], "params": params, "risk": action.risk},
               guards=[guard_entry(node=node, position=run.position, params=params,
                                   unresolved=[])])
        return STOP
    # What was approved is what runs: a guarded step whose resolved parameters
    # no longer match the digest a person approved does not run; ask again.
    approved = (hooks.approved_guard(run=run, node_id=node["id"], position=run.position)
                if _may_be_guarded(run, clear) else None)
    answered = tuple(clear.get("values") or ()) if clear.get("resume") else ()
    matches, current = (still_approved(approved, node, run.context, answered=answered)
                        if approved is not None else (True, ""))
    if not matches:
        _append(run, type="approval.digest_mismatch", data={
            "node": node["id"], "approved": approved["digest"], "current": current})
        _pause(run, purpose="mode_gate", kind="approval",
               title=f"Parameters changed since approval: run {node['action']} ({node['id']})?",
               description="The parameters this step would run with differ from the ones "
                           "approved. Review them again.",
               fields={"type": "object", "properties": {}},
               state={"action": node["action"], "params": params, "risk": action.risk},
               guards=[guard_entry(node=node, position=run.position, params=params,
                                   unresolved=[])])
        return STOP

    # A position the run has only just moved to (in this transaction) has no
    # attempts yet: positions only grow, and forks carry only earlier steps.
    steps = [] if new_position else list(
        Step.objects.filter(run=run, node_id=node["id"], position=run.position)
        .order_by("attempt"))
    last = steps[-1] if steps else None
    granted = False
    if last is not None and last.status in (StepStatus.RUNNING, StepStatus.UNKNOWN):
        if clear.get("retry"):
            # A person checked the system and asked for another attempt.
            granted = True
            run.clearance = {**clear, "retry": False}
        elif not action.idempotent:
            _outcome_unknown(run, node, last)
            return STOP
        _step_close(run, last, StepStatus.INTERRUPTED,
                    last.error or "the worker stopped while the step ran", "step.interrupted")
    failures = sum(1 for s in steps if s.status in FAILED_ATTEMPT)
    retry = node.get("retry") or {}
    if last is not None and last.status in FAILED_ATTEMPT and not granted:
        max_attempts = int(retry.get("max_attempts", 1))
        if failures >= max_attempts:
            run_fail(run=run, actor=None, node=node["id"],
                     error=f"{node['id']}: {last.error or last.status} "
                           f"(after {failures} attempt{'s' if failures > 1 else ''})")
            return STOP
        backoff = float(retry.get("backoff_s", 1.0)) * (2 ** (failures - 1))
        due = (last.finished_at or timezone.now()) + timedelta(seconds=backoff)
        wait = (due - timezone.now()).total_seconds()
        if wait > 0:
            return Wait(wait)
    attempt = (last.attempt + 1) if last is not None else 1
    key = f"run{run.pk}-{node['id']}-{run.position}"
    step = Step.objects.create(
        run=run, node_id=node["id"], position=run.position, attempt=attempt,
        action=node["action"], params=params, status=StepStatus.RUNNING, idempotency_key=key,
        worker=owner, started_at=timezone.now(),
    )
    _append(run, type="step.started", data={
        "step": step.pk, "node": node["id"], "attempt": attempt, "action": node["action"],
        "params": params,
    })
    timeout = float(node.get("timeout_s") or action.default_timeout_s)
    return Launch(run_id=run.pk, step_id=step.pk, node=node, action=node["action"],
                  params=params, attempt=attempt, idempotency_key=key, timeout_s=timeout,
                  clearance=clear, step=step)


def _may_be_guarded(run: Run, clear: dict) -> bool:
    """Return whether a person may have approved this step's parameters.

    Only a gate records what it lets run: an approval node earlier in the
    plan, or the mode's review of this very step (which leaves `approved` in
    the clearance). Without either there is no approval to look up, and a
    plain run's steps skip that query.
    """
    if clear.get("approved"):
        return True
    return any(node.get("type") == "approval" for node in run.nodes[:run.position])


def _missing_fields(run: Run, node: dict, action: Any, missing: list[str]) -> dict:
    """Type each missing reference from the inputs schema or the parameter schema."""
    inputs = (run.inputs_schema or {}).get("properties", {})
    param_schema = action.Params.model_json_schema().get("properties", {})
    by_reference = {}
    for name, value in node.get("params", {}).items():
        ref = is_exact_reference(value)
        if ref:
            by_reference[ref] = name
    properties = {}
    for ref in missing:
        if ref in inputs:
            schema = dict(inputs[ref])
        elif ref in by_reference and by_reference[ref] in param_schema:
            schema = _plain_schema(param_schema[by_reference[ref]])
        else:
            schema = {"type": "string"}
        schema.setdefault("title", ref.replace("_", " ").replace(".", " ").capitalize())
        properties[ref] = schema
    return {"type": "object", "properties": properties, "required": list(properties)}


def _plain_schema(schema: dict) -> dict:
    """Drop pydantic's nullable wrapper and keep what a form can show."""
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
    keep = ("type", "enum", "format", "title", "description", "minimum", "maximum",
            "minLength", "maxLength", "pattern", "items")
    return {k: v for k, v in schema.items() if k in keep} or {"type": "string"}


def _pause(run: Run, *, purpose: str, kind: str, title: str, fields: dict,
           description: str = "", state: dict | None = None, step: Step | None = None,
           assign_to: str | None = None, guards: list[dict] | None = None,
           options: dict | None = None) -> None:
    set_status(run, RunStatus.WAITING)
    request = hooks.open_request(
        run=run, step=step, node_id=run.current_node, position=run.position, kind=kind,
        purpose=purpose, title=title[:300], description=description, fields=fields,
        state=state or {}, assign_to=assign_to, guards=guards or [], options=options or {},
    )
    _append(run, type="run.paused", data={
        "request": request.pk, "kind": kind, "purpose": purpose, "node": run.current_node,
        "title": title, "fields": fields, "step": step.pk if step else None,
        "digest": getattr(request, "digest", ""),
    })


def _step_close(run: Run, step: Step, status: str, error: str, event_type: str) -> None:
    step.status, step.error = status, error
    step.finished_at = step.finished_at or timezone.now()
    step.save()
    _append(run, type=event_type, data={
        "step": step.pk, "node": step.node_id, "attempt": step.attempt, "status": status,
        "error": error,
    })


def _outcome_unknown(run: Run, node: dict, step: Step) -> None:
    if step.status != StepStatus.UNKNOWN:
        step.status = StepStatus.UNKNOWN
        step.error = step.error or "the worker stopped while this step ran"
        step.save()
        _append(run, type="step.outcome_unknown", data={
            "step": step.pk, "node": step.node_id, "attempt": step.attempt,
            "evidence": step.evidence, "error": step.error,
        })
    action = actions.registry().get(node["action"])
    outputs = {
        field: _plain_schema(action.Output.model_json_schema().get("properties", {})
                             .get(field, {"type": "string"}))
        for field in node.get("outputs", {}).values()
    }
    _pause(run, purpose="unknown_outcome", kind="unknown_outcome", step=step,
           title=f"Did {node['action']} ({node['id']}) happen?",
           description=f"{node['action']} is not idempotent and its attempt {step.attempt} "
                       "was interrupted. Check the system, then retry the step, mark it done "
                       "(giving its outputs) or fail the run.",
           fields={"type": "object", "properties": outputs, "required": []},
           state={"evidence": step.evidence, "params": step.params, "error": step.error})


# --- running the action ------------------------------------------------------


def _evidence_path(run_id: int, step_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / str(run_id) / str(step_id)


def _evidence_dir(run_id: int, step_id: int) -> Path:
    """Create the step's (empty) evidence folder."""
    path = _evidence_path(run_id, step_id)
    if path.exists():
        # Files left by an earlier database's step with the same ids are not
        # this step's evidence, and must not be hashed into it.
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _execute(launch: Launch, owner: str) -> ActionResult:
    clear = launch.clearance
    ctx = ActionContext(
        run_id=launch.run_id, step_id=launch.step_id, node_id=launch.node["id"],
        attempt=launch.attempt, idempotency_key=launch.idempotency_key,
        evidence_dir=str(_evidence_dir(launch.run_id, launch.step_id)),
        files_roots=list(settings.AGENTOS_FILES_ROOTS),
        allowed_hosts=list(settings.AGENTOS_API_ALLOWED_HOSTS),
        allowed_origins=[settings.AGENTOS_PORTAL_BASE_URL.rstrip("/")],
        portal_base_url=settings.AGENTOS_PORTAL_BASE_URL,
        browser_executable=settings.AGENTOS_BROWSER_EXECUTABLE,
        secrets=actions.secrets_for(launch.action, launch.params),
        resume_state=clear.get("state") if clear.get("resume") else None,
        resume_values=clear.get("values") if clear.get("resume") else None,
    )
    every = max(0.2, min(5.0, settings.AGENTOS_LEASE_SECONDS / 3))
    return actions.runner().run(
        launch.action, launch.params, ctx, timeout_s=launch.timeout_s,
        heartbeat=lease_heartbeat(lambda: lease_renew(launch.run_id, owner),
                                  settings.AGENTOS_LEASE_SECONDS),
        heartbeat_every_s=every,
    )


def _collect_evidence(run_id: int, step_id: int, result: ActionResult) -> dict:
    folder = _evidence_path(run_id, step_id)
    files = []
    folder.mkdir(parents=True, exist_ok=True)  # the action may have removed it
    with os.scandir(folder) as entries:
        produced = any(True for _ in entries)
    # Most actions leave nothing: skip the walk, just drop the empty folder.
    if produced:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files.append({"name": str(path.relative_to(folder)), "sha256": digest,
                          "bytes": path.stat().st_size,
                          "path": str(path.relative_to(settings.MEDIA_ROOT))})
    if not files:
        folder.rmdir()
    secrets = actions.all_secret_values()
    return {"exit_code": result.exit_code, "duration_ms": round(result.duration_ms, 2),
            "files": files, "log": scrub(result.log or "", secrets)[-4000:]}


def _record(held: _Held, launch: Launch, result: ActionResult, *, go_on: bool) -> Any:
    """Commit a step's result; when the run goes on, decide and start its next node.

    Both happen in one transaction under one lease check: the step's result
    and its event, then (with `go_on`, while the task's time budget lasts)
    whatever the next node needs, with its own events. Return what to do
    next, or None to look again in a fresh transaction.
    """
    owner = held.owner
    evidence = _collect_evidence(launch.run_id, launch.step_id, result)
    secrets = actions.all_secret_values()
    with transaction.atomic():
        run = held.lock()
        stopped = run.status in TERMINAL
        if not stopped and not lease_holds(run, owner):
            raise LeaseLost
        status = RESULT_STATUS[result.status]
        if stopped and status != StepStatus.SUCCEEDED:
            status = StepStatus.CANCELLED
        step = _step_finish(launch, owner, status=status, evidence=evidence,
                            duration_ms=result.duration_ms,
                            error=scrub(result.error or "", secrets)[:4000],
                            output=(scrub_secrets_in(result.output or {}, secrets)
                                    if status == StepStatus.SUCCEEDED else None))
        base = {"step": step.pk, "node": step.node_id, "attempt": step.attempt,
                "status": status, "duration_ms": round(result.duration_ms, 2)}
        if status == StepStatus.SUCCEEDED:
            changed = {} if stopped else apply_outputs(run, launch.node, step.output)
            _append(run, type="step.succeeded", data={
                **base, "output": step.output, "context": changed,
                "evidence": [f["name"] for f in evidence["files"]],
            })
            if stopped:
                _save(run)
                return STOP
            run.position += 1
            run.clearance = {}
            run.current_node = (run.nodes[run.position]["id"]
                                if run.position < len(run.nodes) else "")
            return _go_on(run, owner, go_on, new_position=True)
        if status == StepStatus.NEEDS_INPUT and not stopped:
            asked = result.needs_input or {}
            _append(run, type="step.needs_input", data={**base,
                    "message": asked.get("message", "")})
            properties = asked.get("fields") or {}
            fields = {"type": "object", "properties": properties,
                      "required": asked.get("required") or list(properties)}
            _pause(run, purpose="action_input", kind="input", step=step,
                   title=asked.get("message") or f"{launch.action} needs a value",
                   fields=fields, state=asked.get("state") or {})
            _save(run)
            return STOP
        _append(run, type="step.cancelled" if stopped else "step.failed",
                data={**base, "error": step.error})
        if stopped:
            _save(run)
            return STOP
        action = actions.registry().get(launch.action)
        if not action.idempotent and status in (StepStatus.CRASHED, StepStatus.TIMED_OUT):
            # It may have done its work before it died: a person must say.
            _outcome_unknown(run, launch.node, step)
            _save(run)
            return STOP
        return _go_on(run, owner, go_on)


def _go_on(run: Run, owner: str, go_on: bool, *, new_position: bool = False) -> Any:
    """Extend the lease, decide the next node in the same transaction, save."""
    lease_extend_on(run)
    outcome = (_decide(run, owner, new_position=new_position)
               if go_on and run.status == RunStatus.RUNNING else None)
    _save(run)
    return outcome


def _step_finish(launch: Launch, owner: str, *, status: str, evidence: dict,
                 duration_ms: float, error: str, output: dict | None) -> Step:
    """Write a step's result, only while it is still ours and running.

    The condition is the check: a step another worker closed (its lease
    expired and the run moved on) is not overwritten, and this worker stops.
    """
    now = timezone.now()
    changes: dict[str, Any] = {"status": status, "finished_at": now, "evidence": evidence,
                               "duration_ms": duration_ms, "error": error}
    if output is not None:
        changes["output"] = output
    written = Step.objects.filter(pk=launch.step_id, status=StepStatus.RUNNING,
                                  worker=owner).update(**changes)
    if written != 1:
        raise LeaseLost
    step = launch.step if launch.step is not None else Step.objects.get(pk=launch.step_id)
    for name, value in changes.items():
        setattr(step, name, value)
    return step


# --- recovery ----------------------------------------------------------------


def runs_requeue_stale() -> int:
    """Re-queue runs whose worker died (lease expired) or whose task was lost."""
    from workflows.leases import stale_runs

    count = 0
    for run_id in stale_runs():
        with transaction.atomic():
            run = lock_run(run_id)
            if run.status not in ACTIVE:
                continue
            if run.lease_owner and run.lease_expires_at and \
                    run.lease_expires_at < timezone.now():
                _append(run, type="run.lease_expired",
                             data={"worker": run.lease_owner, "node": run.current_node})
                run.lease_owner, run.lease_expires_at = "", None
                run.save_state()
            elif run.lease_owner:
                continue
            transaction.on_commit(lambda rid=run_id: enqueue_advance(rid))
            count += 1
    return count
