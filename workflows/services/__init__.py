"""Every change to workflows and runs: one function, one transaction, its events.

The functions live by what they change: ``runs`` (create, cancel, fail,
reroute, resume; a run's status and lock), ``workflow_defs`` (a workflow's
spec and versions), ``context`` (a run's context: checking and merging
values), ``steps`` (a step a person marked done). Callers import them from
here.
"""

from workflows.exceptions import RunNotFound
from workflows.services.context import (
    _context_errors,
    apply_outputs,
    merge_values,
    missing_required,
)
from workflows.services.runs import (
    enqueue_advance,
    lock_run,
    plan_review_apply,
    run_cancel,
    run_continue,
    run_create,
    run_fail,
    run_reroute,
    set_status,
)
from workflows.services.steps import step_mark_done
from workflows.services.workflow_defs import workflow_create, workflow_update

__all__ = [
    "RunNotFound",
    "_context_errors",
    "apply_outputs",
    "enqueue_advance",
    "lock_run",
    "merge_values",
    "missing_required",
    "plan_review_apply",
    "run_cancel",
    "run_continue",
    "run_create",
    "run_fail",
    "run_reroute",
    "set_status",
    "step_mark_done",
    "workflow_create",
    "workflow_update",
]
