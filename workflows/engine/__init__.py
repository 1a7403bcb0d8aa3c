"""The engine: advance a run node by node until it pauses, ends or runs out of time.

One call holds the run's lease for its whole stay. An action runs outside
any transaction in its own process; its result is committed with its event,
the context changes and the new position, and the next node is decided and
started, in one short transaction (`record`), so a step costs one commit.
Every commit re-checks the lease, so a worker that lost it writes nothing.
The frozen plan is read once per call: it cannot change while the run is
running (only a waiting run's plan review edits it), so later locks skip it.

The parts: ``base`` (what they share), ``decide`` (the next node),
``record`` (running an action and committing its result); the loop and the
recovery of stale runs are here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workflows import actions, drain
from workflows.engine.base import STOP, Held, Launch, LeaseLost, Wait, append_event, save_run
from workflows.engine.decide import decide
from workflows.engine.record import execute, record
from workflows.leases import (
    lease_acquire,
    lease_extend_on,
    lease_holds,
    lease_release,
    lease_renew,
    worker_id,
)
from workflows.reconnect import quietly, retrying
from workflows.services import enqueue_advance, lock_run, set_status
from workflows.states import ACTIVE, RunStatus

__all__ = ["LeaseLost", "run_advance", "runs_requeue_stale"]

logger = logging.getLogger(__name__)


def run_advance(*, run_id: int, owner: str | None = None) -> None:
    """Advance a run while this worker holds its lease."""
    owner = owner or worker_id()
    if drain.draining():
        # This worker is stopping: hand the task on untouched, so another
        # worker starts the run now rather than after a lease or a retry.
        enqueue_advance(run_id)
        return
    # A first zygote start can take seconds on a busy machine: not on the
    # lease's clock, or the lease could lapse before the first heartbeat.
    actions.runner().start()
    # Each transaction is retried while the database is away (a restart):
    # each one re-checks the lease and the step before it writes.
    if not retrying(lease_acquire, run_id, owner):
        return
    deadline = time.monotonic() + settings.AGENTOS_TASK_BUDGET_S
    held = Held(run_id=run_id, owner=owner)
    try:
        outcome = retrying(_next, held)
        while True:
            if outcome is STOP:
                return
            if isinstance(outcome, Wait):
                if drain.draining():
                    retrying(_requeue, run_id, owner, DRAINING)
                    return
                if not _sleep_renewing(run_id, owner, outcome.seconds):
                    return
                outcome = None
            elif isinstance(outcome, Launch):
                result = execute(outcome, owner)
                if result.status == "killed" and drain.past_bound():
                    # Cut at the drain bound: nothing of it is recorded. The
                    # next worker finds the step running and treats it as
                    # interrupted, exactly as after a crash (decide).
                    retrying(_requeue, run_id, owner, CUT_AT_DRAIN_BOUND)
                    return
                go_on = time.monotonic() <= deadline and not drain.draining()
                outcome = retrying(record, held, outcome, result, go_on=go_on)
            if outcome is None:
                if drain.draining():
                    retrying(_requeue, run_id, owner, DRAINING)
                    return
                if time.monotonic() > deadline:
                    retrying(_requeue, run_id, owner, BUDGET_USED)
                    return
                outcome = retrying(_next, held)
    except LeaseLost:
        logger.warning("run %s: lease lost by %s; stopping", run_id, owner)
    finally:
        # Unreleased, the lease simply expires.
        quietly(lease_release, run_id, owner, default=None)


def _sleep_renewing(run_id: int, owner: str, seconds: float) -> bool:
    until = time.monotonic() + seconds
    step = max(0.2, settings.AGENTOS_LEASE_SECONDS / 3)
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(step, left))
        if not quietly(lease_renew, run_id, owner, default=True):
            return False
    return True


BUDGET_USED = "task time budget used"
DRAINING = "worker draining"
CUT_AT_DRAIN_BOUND = "worker stopped: the step was cut at the drain bound"


def _requeue(run_id: int, owner: str, reason: str) -> None:
    """Queue the run again for any worker, giving our lease back in the same commit."""
    with transaction.atomic():
        run = lock_run(run_id)
        if not lease_holds(run, owner) or run.status != RunStatus.RUNNING:
            return
        set_status(run, RunStatus.QUEUED)
        append_event(run, type="run.requeued", data={"reason": reason, "worker": owner})
        save_run(run)
        transaction.on_commit(lambda: enqueue_advance(run_id))


def _next(held: Held) -> Any:
    owner = held.owner
    with transaction.atomic():
        run = held.lock()
        if not lease_holds(run, owner):
            raise LeaseLost
        if run.status == RunStatus.QUEUED:
            set_status(run, RunStatus.RUNNING)
            run.started_at = run.started_at or timezone.now()
            append_event(run, "run.running", {"worker": owner, "node": run.current_node})
        if run.status != RunStatus.RUNNING:
            save_run(run)
            return STOP
        lease_extend_on(run)
        outcome = decide(run, owner)
        save_run(run)
        return outcome


def runs_requeue_stale() -> int:
    """Re-queue runs whose worker died (lease expired) or whose task was lost."""
    from workflows.leases import stale_runs

    count = 0
    for run_id in stale_runs():
        with transaction.atomic():
            run = lock_run(run_id)
            if run.status not in ACTIVE:
                continue
            if run.lease_owner and run.lease_expires_at and run.lease_expires_at < timezone.now():
                append_event(
                    run,
                    type="run.lease_expired",
                    data={"worker": run.lease_owner, "node": run.current_node},
                )
                run.lease_owner, run.lease_expires_at = "", None
                run.save_state()
            elif run.lease_owner:
                continue
            transaction.on_commit(lambda rid=run_id: enqueue_advance(rid))
            count += 1
    return count
