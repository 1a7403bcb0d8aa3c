"""What the engine's parts share: outcomes, the held run, saving and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router

from workflows.events import event_stage
from workflows.models import Run, Step
from workflows.resume import ResumeGrant
from workflows.services import RunNotFound, lock_run
from workflows.states import RunStatus, StepStatus

FAILED_ATTEMPT = frozenset(
    {StepStatus.FAILED, StepStatus.CRASHED, StepStatus.TIMED_OUT, StepStatus.INTERRUPTED}
)
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


class _Next:
    pass


# A block's or a child node's answer when it ended and the run moved past it:
# the decision goes on at the run's new position.
NEXT = _Next()


@dataclass
class Wait:
    seconds: float


@dataclass
class Launch:
    run_id: int
    step_id: int
    node: dict[str, Any]
    action: str
    params: dict[str, Any]
    attempt: int
    idempotency_key: str
    timeout_s: float
    grant: ResumeGrant = field(default_factory=ResumeGrant)
    step: Step | None = None
    # Inside a block: the node's path and its lane's path.
    node_path: str = ""
    lane: str | None = None
    # The run's correlation id, which its action processes carry (logs, HTTP).
    correlation_id: str = ""


# What deciding a run's next move gives the loop: a step to run, a block's
# steps to run at once, a wait, or STOP (paused, ended, failed or handed on).
Outcome = Launch | list[Launch] | Wait | _Stop


@dataclass
class Held:
    """What one worker's stay on a run keeps between its transactions."""

    run_id: int
    owner: str
    plan: dict[str, Any] | None = None

    def lock(self) -> Run:
        """Lock the run row; after the first time, without the frozen plan.

        Each step locks the run again (the lease and status checks read the
        fresh row): the statement is Django's, compiled once per database
        (`_relock_sql`) rather than at every step.
        """
        if self.plan is None:
            run = lock_run(self.run_id)
            self.plan = run.plan
            return run
        alias = router.db_for_write(Run)
        found = list(Run.objects.raw(_relock_sql(alias), [self.run_id], using=alias))
        if not found:
            raise RunNotFound(f"no run {self.run_id}")
        run = found[0]
        run.plan = self.plan
        return run


# The re-lock's SQL by database alias and vendor (its FOR UPDATE is the vendor's).
_relock: dict[tuple[str, str], str] = {}


def _relock_sql(alias: str) -> str:
    """Return the SQL that locks one run (by primary key) without its frozen plan.

    Compiled from the queryset it stands for, inside the caller's
    transaction (select_for_update refuses to compile outside one); the
    primary key is its only parameter.
    """
    vendor = connections[alias].vendor
    sql = _relock.get((alias, vendor))
    if sql is None:
        query = (
            Run.objects.select_for_update()
            .defer("plan", "inputs_schema")
            .filter(pk=0)
            .order_by()
            .query
        )
        sql, params = query.get_compiler(alias).as_sql()
        if list(params) != [0]:
            raise RuntimeError(f"the run's re-lock has parameters {params!r}, not its key")
        _relock[(alias, vendor)] = sql
    return sql


def save_run(run: Run) -> None:
    """Save the locked run; one that stops running gives its lease back with it.

    Releasing in the same commit as the pause (or end, or re-queue) matters:
    a decision can resume the run the moment the pause is visible, and the
    task it queues must find the lease free, not still ours.
    """
    if run.status != RunStatus.RUNNING:
        run.lease_owner, run.lease_expires_at = "", None
    run.save_state()


def append_event(run: Run, type: str, data: dict[str, Any]) -> None:
    """Append a run event; the engine always saves the locked run afterwards.

    The event is inserted by that save, with the others of the transaction,
    in one statement (`workflows.events.event_stage`).
    """
    event_stage(run=run, type=type, data=data)
