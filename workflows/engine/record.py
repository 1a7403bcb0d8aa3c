"""Running a step's action and committing its result with the next decision."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.utils import timezone

from agentos_common.folders import FolderPool
from agentos_common.redaction import scrub_secrets_in
from agentos_site import correlation
from executors.base import ActionContext
from executors.runner import ActionResult, scrub
from workflows import drain, executor_config, sql
from workflows.engine import flow, lane_results
from workflows.engine.asks import pause
from workflows.engine.base import (
    RESULT_STATUS,
    STOP,
    Held,
    Launch,
    LeaseLost,
    Outcome,
    append_event,
    save_run,
)
from workflows.engine.decide import decide, outcome_unknown
from workflows.leases import lease_extend_on, lease_holds, lease_renew
from workflows.models import Run, Step
from workflows.reconnect import lease_heartbeat
from workflows.services import apply_outputs
from workflows.states import TERMINAL, RunStatus, StepStatus

logger = logging.getLogger(__name__)


def _evidence_path(run_id: int, step_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / str(run_id) / str(step_id)


def _folders() -> FolderPool:
    """Emptied evidence folders, parked for the next steps (an rmdir waits for the disk)."""
    return FolderPool(os.path.join(settings.MEDIA_ROOT, ".free-folders"))


def _evidence_dir(run_id: int, step_id: int) -> Path:
    """Create the step's (empty) evidence folder."""
    path = _evidence_path(run_id, step_id)
    if path.exists():
        # Files left by an earlier database's step with the same ids are not
        # this step's evidence, and must not be hashed into it.
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _folders().take(str(path))
    return path


def execute(
    launch: Launch,
    owner: str,
    *,
    runner: Any = None,
    heartbeat: Any = None,
) -> ActionResult:
    """Run a launch's action on `runner` (this process's own by default).

    Its log lines carry the run, the node's path and the correlation id
    (AGENTOS_LOG_FORMAT=json); lanes of a block log from their own threads.
    """
    path = launch.node_path or launch.node["id"]
    with correlation.bound(
        correlation_id=launch.correlation_id, run_id=launch.run_id, node_path=path
    ):
        logger.info(
            "run %s: step %s (%s, attempt %s) started",
            launch.run_id,
            path,
            launch.action,
            launch.attempt,
        )
        result = _execute(launch, owner, runner=runner, heartbeat=heartbeat)
        logger.info("run %s: step %s (%s) %s", launch.run_id, path, launch.action, result.status)
        return result


def _execute(launch: Launch, owner: str, *, runner: Any, heartbeat: Any) -> ActionResult:
    grant = launch.grant
    ctx = ActionContext(
        run_id=launch.run_id,
        step_id=launch.step_id,
        node_id=launch.node["id"],
        attempt=launch.attempt,
        idempotency_key=launch.idempotency_key,
        evidence_dir=str(_evidence_dir(launch.run_id, launch.step_id)),
        files_roots=list(settings.AGENTOS_FILES_ROOTS),
        allowed_hosts=list(settings.AGENTOS_API_ALLOWED_HOSTS),
        allowed_origins=[settings.AGENTOS_PORTAL_BASE_URL.rstrip("/")],
        secret_hosts={
            name: list(origins) for name, origins in settings.AGENTOS_SECRET_HOSTS.items()
        },
        portal_base_url=settings.AGENTOS_PORTAL_BASE_URL,
        browser_executable=settings.AGENTOS_BROWSER_EXECUTABLE,
        secrets=executor_config.secrets_for(launch.action, launch.params),
        resume_state=grant.state if grant.resume else None,
        resume_values=grant.values if grant.resume else None,
        correlation_id=launch.correlation_id,
    )
    every = max(0.2, min(5.0, settings.AGENTOS_LEASE_SECONDS / 3))
    return (runner or executor_config.runner()).run(
        launch.action,
        launch.params,
        ctx,
        timeout_s=launch.timeout_s,
        heartbeat=_unless_cut(
            heartbeat
            or lease_heartbeat(
                lambda: lease_renew(launch.run_id, owner), settings.AGENTOS_LEASE_SECONDS
            )
        ),
        heartbeat_every_s=min(every, 0.5) if heartbeat else every,
    )


def _unless_cut(beat: Callable[[], bool]) -> Callable[[], bool]:
    """Stop the action once a draining worker's bound has passed (workflows.drain)."""
    return lambda: not drain.past_bound() and beat()


def _collect_evidence(run_id: int, step_id: int, result: ActionResult) -> dict[str, Any]:
    folder = _evidence_path(run_id, step_id)
    files = []
    folder.mkdir(parents=True, exist_ok=True)  # the action may have removed it
    with os.scandir(folder) as entries:
        produced = any(True for _ in entries)
    # Most actions leave nothing: skip the walk, just drop the empty folder.
    if produced:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files.append(
                {
                    "name": str(path.relative_to(folder)),
                    "sha256": digest,
                    "bytes": path.stat().st_size,
                    "path": str(path.relative_to(settings.MEDIA_ROOT)),
                }
            )
    if not files:
        _folders().give(str(folder))
    secrets = executor_config.all_secret_values()
    return {
        "exit_code": result.exit_code,
        "duration_ms": round(result.duration_ms, 2),
        "files": files,
        "log": scrub(result.log or "", secrets)[-4000:],
    }


def record(held: Held, launch: Launch, result: ActionResult, *, go_on: bool) -> Outcome | None:
    """Commit a step's result; when the run goes on, decide and start its next node.

    Both happen in one transaction under one lease check: the step's result
    and its event, then (with `go_on`, while the task's time budget lasts)
    whatever the next node needs, with its own events. Return what to do
    next, or None to look again in a fresh transaction.
    """
    owner = held.owner
    evidence = _collect_evidence(launch.run_id, launch.step_id, result)
    secrets = executor_config.all_secret_values()
    with transaction.atomic():
        run = held.lock()
        stopped = run.status in TERMINAL
        if not stopped and not lease_holds(run, owner):
            raise LeaseLost
        status = RESULT_STATUS[result.status]
        if stopped and status != StepStatus.SUCCEEDED:
            status = StepStatus.CANCELLED
        step = _step_finish(
            launch,
            owner,
            status=status,
            evidence=evidence,
            duration_ms=result.duration_ms,
            error=scrub(result.error or "", secrets)[:4000],
            output=(
                scrub_secrets_in(result.output or {}, secrets)
                if status == StepStatus.SUCCEEDED
                else None
            ),
        )
        base = {
            "step": step.pk,
            "node": step.node_id,
            "attempt": step.attempt,
            "status": status,
            "duration_ms": round(result.duration_ms, 2),
        }
        if launch.lane is not None:
            base["node_path"] = launch.node_path
            return _lane_recorded(run, owner, launch, step, result, base, status, stopped, go_on)
        if status == StepStatus.SUCCEEDED:
            changed = {} if stopped else apply_outputs(run, launch.node, step.output or {})
            append_event(
                run,
                type="step.succeeded",
                data={
                    **base,
                    "output": step.output,
                    "context": changed,
                    "evidence": [f["name"] for f in evidence["files"]],
                },
            )
            if stopped:
                save_run(run)
                return STOP
            flow.move_on(run)
            return _go_on(run, owner, go_on, new_position=True)
        if status == StepStatus.NEEDS_INPUT and not stopped:
            asked = result.needs_input or {}
            append_event(
                run, type="step.needs_input", data={**base, "message": asked.get("message", "")}
            )
            properties = asked.get("fields") or {}
            fields = {
                "type": "object",
                "properties": properties,
                "required": asked.get("required") or list(properties),
            }
            pause(
                run,
                purpose="action_input",
                kind="input",
                step=step,
                title=asked.get("message") or f"{launch.action} needs a value",
                fields=fields,
                state=asked.get("state") or {},
            )
            save_run(run)
            return STOP
        append_event(
            run,
            type="step.cancelled" if stopped else "step.failed",
            data={**base, "error": step.error},
        )
        if stopped:
            save_run(run)
            return STOP
        action = executor_config.registry().get(launch.action)
        if not action.idempotent and status in (StepStatus.CRASHED, StepStatus.TIMED_OUT):
            # It may have done its work before it died: a person must say.
            outcome_unknown(run, launch.node, step)
            save_run(run)
            return STOP
        return _go_on(run, owner, go_on)


def _lane_recorded(
    run: Run,
    owner: str,
    launch: Launch,
    step: Step,
    result: ActionResult,
    base: dict[str, Any],
    status: str,
    stopped: bool,
    go_on: bool,
) -> Outcome | None:
    """Record a lane's step: its lane moves, pauses or retries; the others go on."""
    if stopped:
        append_event(
            run,
            type="step.succeeded" if status == StepStatus.SUCCEEDED else "step.cancelled",
            data={**base, "output": step.output} if status == StepStatus.SUCCEEDED else base,
        )
        save_run(run)
        return STOP
    if status == StepStatus.SUCCEEDED:
        changed, in_item = lane_results.lane_recorded(run, launch, step)
        # A map item's outputs stay in its lane until the map ends.
        key = "lane_context" if in_item else "context"
        append_event(
            run,
            type="step.succeeded",
            data={
                **base,
                "output": step.output,
                key: changed,
                "evidence": [f["name"] for f in step.evidence.get("files", [])],
            },
        )
        return _go_on(run, owner, go_on)
    if status == StepStatus.NEEDS_INPUT:
        asked = result.needs_input or {}
        append_event(
            run, type="step.needs_input", data={**base, "message": asked.get("message", "")}
        )
        properties = asked.get("fields") or {}
        lane_results.lane_paused(
            run,
            launch,
            step,
            purpose="action_input",
            kind="input",
            title=asked.get("message") or f"{launch.action} needs a value",
            fields={
                "type": "object",
                "properties": properties,
                "required": asked.get("required") or list(properties),
            },
            state=asked.get("state") or {},
        )
        return _go_on(run, owner, go_on)
    append_event(run, type="step.failed", data={**base, "error": step.error})
    action = executor_config.registry().get(launch.action)
    if not action.idempotent and status in (StepStatus.CRASHED, StepStatus.TIMED_OUT):
        lane_results.lane_outcome_unknown(run, launch, step)
    return _go_on(run, owner, go_on)


def _go_on(run: Run, owner: str, go_on: bool, *, new_position: bool = False) -> Outcome | None:
    """Extend the lease, decide the next node in the same transaction, save."""
    lease_extend_on(run)
    outcome = (
        decide(run, owner, new_position=new_position)
        if go_on and run.status == RunStatus.RUNNING
        else None
    )
    save_run(run)
    return outcome


def _step_finish(
    launch: Launch,
    owner: str,
    *,
    status: str,
    evidence: dict[str, Any],
    duration_ms: float,
    error: str,
    output: dict[str, Any] | None,
) -> Step:
    """Write a step's result, only while it is still ours and running.

    The condition is the check: a step another worker closed (its lease
    expired and the run moved on) is not overwritten, and this worker stops.
    """
    now = timezone.now()
    changes: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "evidence": evidence,
        "duration_ms": duration_ms,
        "error": error,
    }
    if output is not None:
        changes["output"] = output
    where = {"id": launch.step_id, "status": StepStatus.RUNNING, "worker": owner}
    alias = router.db_for_write(Step)
    if sql.usable(Step, alias):
        written = sql.update(Step, changes, where, using=alias)
    else:
        written = Step.objects.filter(**where).update(**changes)
    if written != 1:
        raise LeaseLost
    step = launch.step if launch.step is not None else Step.objects.get(pk=launch.step_id)
    for name, value in changes.items():
        setattr(step, name, value)
    return step
