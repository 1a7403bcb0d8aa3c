"""The run state machine: statuses and the one table of allowed transitions."""

from __future__ import annotations

from django.db import models

from workflows.exceptions import TransitionNotAllowed


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a person"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
# Not ended: the few runs the metrics count live (a partial index holds them
# on PostgreSQL).
UNFINISHED = frozenset(RunStatus) - TERMINAL

# source -> allowed targets. A waiting run goes back to queued when a person
# decides, so a worker picks it up again; it never jumps straight to running.
TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.QUEUED,
            RunStatus.WAITING,
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
        }
    ),
    RunStatus.WAITING: frozenset({RunStatus.QUEUED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def check_transition(source: str, target: str) -> None:
    """Raise TransitionNotAllowed unless the table allows source -> target."""
    if target not in TRANSITIONS[source]:
        raise TransitionNotAllowed(source, target)


class RunMode(models.TextChoices):
    AUTONOMOUS = "autonomous", "Autonomous: only the plan's own gates"
    ASSISTED = "assisted", "Assisted: the plan's gates and risky actions"
    INTERACTIVE = "interactive", "Interactive: every action needs approval"


# How much a mode asks of people: a run may be stricter than its workflow, never
# laxer (autonomous < assisted < interactive).
MODE_STRICTNESS: dict[str, int] = {
    RunMode.AUTONOMOUS: 0,
    RunMode.ASSISTED: 1,
    RunMode.INTERACTIVE: 2,
}


def modes_allowed(floor: str) -> list[str]:
    """Return the modes a run of a workflow in mode `floor` may use, laxest first."""
    least = MODE_STRICTNESS.get(floor, MODE_STRICTNESS[RunMode.ASSISTED])
    return [mode for mode, level in MODE_STRICTNESS.items() if level >= least]


def mode_refusal(mode: str | None, floor: str) -> str:
    """Return why `mode` is weaker than the workflow's `floor`, or "" when it is not."""
    if mode is None or mode in modes_allowed(floor):
        return ""
    return (
        f"this workflow runs in the {floor} mode; a run may use "
        f"{' or '.join(modes_allowed(floor))}, never a weaker mode"
    )


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CRASHED = "crashed", "Crashed"
    TIMED_OUT = "timed_out", "Timed out"
    NEEDS_INPUT = "needs_input", "Needs input"
    INTERRUPTED = "interrupted", "Interrupted"
    UNKNOWN = "unknown", "Outcome unknown"
    CANCELLED = "cancelled", "Cancelled"


# A step that ended in failure: the dashboard's failures by action.
STEP_FAILED = frozenset({StepStatus.FAILED, StepStatus.CRASHED, StepStatus.TIMED_OUT})
