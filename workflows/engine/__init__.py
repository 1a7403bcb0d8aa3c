"""The engine: advance a run node by node until it pauses, ends or runs out of time.

One call holds the run's lease for its whole stay. An action runs outside
any transaction in its own process; its result is committed with its event,
the context changes and the new position, and the next node is decided and
started, in one short transaction (`record`), so a step costs one commit.
Every commit re-checks the lease, so a worker that lost it writes nothing.
The frozen plan is read once per call: it cannot change while the run is
running (only a waiting run's plan review edits it), so later locks skip it.

The parts: ``base`` (what they share), ``decide`` (the next node),
``record`` (running an action and committing its result), and below them
``flow``, ``asks``, ``steps``, ``children`` and a block's ``lanes``,
``lane_nodes``, ``blocks`` and ``lane_results`` (docs/architecture.md maps
them); the loop and the recovery of stale runs are here.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from executors.runner import ActionResult
from workflows import drain, executor_config
from workflows.engine.base import (
    STOP,
    Held,
    Launch,
    LeaseLost,
    Outcome,
    Wait,
    append_event,
    save_run,
)
from workflows.engine.decide import decide
from workflows.engine.record import execute, record
from workflows.leases import (
    lease_extend_on,
    lease_free_for,
    lease_holds,
    lease_release,
    lease_renew,
    worker_id,
)
from workflows.models import Run
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
    executor_config.runner().start()
    # Each transaction is retried while the database is away (a restart):
    # each one re-checks the lease and the step before it writes. The lease
    # is taken in the run's first transaction, with its first decision: one
    # commit fewer (on PostgreSQL a WAL flush) before the first step.
    deadline = time.monotonic() + settings.AGENTOS_TASK_BUDGET_S
    held = Held(run_id=run_id, owner=owner)
    taken, first = retrying(_take, held)
    if not taken:
        return
    lanes = _Lanes(run_id, owner)
    try:
        outcome: Outcome | None = first
        while True:
            if isinstance(outcome, list):
                # A block's actions: each on a runner of its own, at once.
                lanes.submit(outcome)
                outcome = None
                if not lanes.busy:
                    outcome = retrying(_next, held)
                    continue
            if lanes.busy:
                if outcome is STOP:
                    lanes.stop.set()
                outcome = lanes.collect(held, go_on=lambda: time.monotonic() <= deadline)
                ended = lanes.stop.is_set()
                if outcome is None and lanes.busy and not ended and time.monotonic() <= deadline:
                    # A person may have let a waiting branch go on meanwhile.
                    outcome = retrying(_next, held)
                continue
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
        lanes.close()
        # Unreleased, the lease simply expires.
        quietly(lease_release, run_id, owner, default=None)


class _Lanes:
    """A block's actions in flight in this worker, each in a thread on its own runner.

    The threads only wait for their child process; every database write
    (heartbeats included) stays in this thread, which renews the lease while
    it waits and tells the threads to kill their children when it is lost.
    """

    def __init__(self, run_id: int, owner: str) -> None:
        self.run_id, self.owner = run_id, owner
        self.flying: dict[Future[ActionResult], tuple[Launch, Any]] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.free: list[Any] = []
        self.stop = threading.Event()
        self.pending: list[Launch] = []

    @property
    def busy(self) -> bool:
        return bool(self.flying)

    def submit(self, launches: list[Launch]) -> None:
        size = settings.AGENTOS_RUN_PARALLELISM
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="lane")
            self.free = executor_config.runners(size)
        for launch in launches:
            if not self.free:
                # More lanes ready than runners: the step waits its turn, in
                # this worker, as RUNNING (it is ours; nobody else takes it).
                self.pending.append(launch)
                continue
            runner = self.free.pop()
            future = self.pool.submit(
                execute, launch, self.owner, runner=runner, heartbeat=self._beat
            )
            self.flying[future] = (launch, runner)

    def _beat(self) -> bool:
        return not self.stop.is_set()

    def collect(self, held: Held, *, go_on: Callable[[], bool]) -> Outcome | None:
        """Wait for an action to end (renewing the lease); record it; return what next."""
        every = max(0.2, min(1.0, settings.AGENTOS_LEASE_SECONDS / 3))
        done, _ = wait(list(self.flying), timeout=every, return_when=FIRST_COMPLETED)
        if not quietly(lease_renew, self.run_id, self.owner, default=True):
            self.stop.set()  # cancelled, failed or taken: kill what runs
        outcome: Outcome | None = None
        for future in done:
            launch, runner = self.flying.pop(future)
            self.free.append(runner)
            result = future.result()
            got = retrying(record, held, launch, result, go_on=go_on())
            if isinstance(got, list):
                self.submit(got)
            elif got is not None:
                # STOP, or past the block: its next node's Launch or Wait.
                outcome = got
        while self.pending and self.free:
            self.submit([self.pending.pop(0)])
        if outcome is STOP and self.flying:
            # The run ended (a lane failed it, or it was cancelled): what
            # still runs is killed now and recorded as cancelled.
            self.stop.set()
            return None
        return outcome

    def close(self) -> None:
        self.stop.set()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


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


def _take(held: Held) -> tuple[bool, Outcome | None]:
    """Take the run's lease if it is free, expired or ours, and decide its first move.

    (False, None) when it is not ours to take: another worker holds it, or
    the run is no longer active; nothing is written then.
    """
    with transaction.atomic():
        run = held.lock()
        if not lease_free_for(run, held.owner):
            return False, None
        run.lease_owner = held.owner
        return True, _move(held, run)


def _next(held: Held) -> Outcome:
    with transaction.atomic():
        run = held.lock()
        if not lease_holds(run, held.owner):
            raise LeaseLost
        return _move(held, run)


def _move(held: Held, run: Run) -> Outcome:
    """Decide the locked run's next move and save it (the caller's transaction)."""
    owner = held.owner
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
            transaction.on_commit(functools.partial(enqueue_advance, run_id))
            count += 1
    from workflows.engine.children import wake_stale_parents

    return count + quietly(wake_stale_parents, default=0)
