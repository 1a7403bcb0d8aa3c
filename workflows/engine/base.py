"""What the engine's parts share: outcomes, the held run, saving and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflows import sql
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
        fresh row): the statement is written once per database
        (`workflows.sql.lock`), not built by the ORM at every step.
        """
        if self.plan is None:
            first = lock_run(self.run_id)
            self.plan = first.plan
            return first
        run = sql.lock(Run, self.run_id, omit=("plan", "inputs_schema"))
        if run is None:
            raise RunNotFound(f"no run {self.run_id}")
        run.plan = self.plan
        return run


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
