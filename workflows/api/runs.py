"""Runs: start (idempotent), list, read, events, cancel, fork, batch."""

from typing import Annotated

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Header, Path, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import Field

from agentos_site import policy
from agentos_site.api_errors import ERRORS
from agentos_site.api_pagination import MAX_ID, Mapped, Page
from workflows.api.catalog import require
from workflows.batches import BatchInvalid, RowError, rows_from_csv, runs_start_batch
from workflows.forks import run_create_once, run_fork
from workflows.models import Event, Run, Workflow
from workflows.plans import PlanError, PlanInvalid
from workflows.schemas import (
    BatchIn,
    BatchOut,
    CancelIn,
    EventOut,
    ForkIn,
    RunIn,
    RunOut,
    RunStatusName,
    RunSummaryOut,
)
from workflows.selectors import event_out, run_detail, run_summary, runs_list
from workflows.services import run_cancel

router = Router(tags=["runs"])
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]


class RunFilter(Schema):
    status: RunStatusName | None = None
    workflow: str | None = Field(None, max_length=100)


class EventFilter(Schema):
    after: int = Field(0, ge=0, le=MAX_ID, description="Only events with a greater seq.")


def _run(request: HttpRequest, run_id: int) -> Run:
    user = require(request, policy.RUNS_VIEW)
    # A run the caller may not see answers 404, as if it did not exist.
    return get_object_or_404(
        policy.visible_runs(user, Run.objects.select_related("workflow", "requester")), pk=run_id
    )


@router.post("", response={200: RunOut, 201: RunOut, **ERRORS})
def start_run(
    request: HttpRequest,
    payload: RunIn,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=200),
) -> Status:
    """Start a run of a workflow or a bare plan; the same Idempotency-Key returns
    the same run (200) instead of starting another."""
    user = require(request, policy.RUNS_START)
    workflow = None
    if payload.workflow is not None:
        workflow = Workflow.objects.filter(slug=payload.workflow).first()
        if workflow is None:
            raise PlanInvalid([PlanError("", "workflow", f"no workflow {payload.workflow!r}")])
    # A bare plan was written by a planner or an integration, not authored in a
    # workflow: a person reviews it first (in every mode when it holds an
    # action that is not low-risk; see run_create).
    run, created = run_create_once(
        idempotency_key=idempotency_key,
        requester=user,
        workflow=workflow,
        plan=payload.plan,
        context=payload.context,
        mode=payload.mode,
        review_plan=payload.plan is not None,
    )
    return Status(201 if created else 200, run_detail(run))


@router.get("", response={200: list[RunSummaryOut], **ERRORS})
@paginate(Page)
def list_runs(request: HttpRequest, filters: Query[RunFilter]) -> Mapped:
    """List runs, newest first; filter by status and workflow slug."""
    user = require(request, policy.RUNS_VIEW)
    runs = runs_list(status=filters.status, workflow=filters.workflow)
    return Mapped(policy.visible_runs(user, runs), run_summary)


@router.post("/batch", response={201: BatchOut, **ERRORS})
def start_batch(request: HttpRequest, payload: BatchIn) -> Status:
    """Start up to 100 runs of a workflow from rows or CSV text: all or none."""
    user = require(request, policy.RUNS_START)
    workflow = Workflow.objects.filter(slug=payload.workflow).first()
    if workflow is None:
        raise PlanInvalid([PlanError("", "workflow", f"no workflow {payload.workflow!r}")])
    if (payload.rows is None) == (payload.csv is None):
        raise BatchInvalid([RowError(0, "rows", "give either rows or csv")])
    rows = (
        payload.rows
        if payload.rows is not None
        else rows_from_csv(payload.csv or "", workflow.inputs_schema)
    )
    batch = runs_start_batch(
        workflow=workflow,
        rows=rows,
        actor=user,
        mode=payload.mode,
        source="json" if payload.rows is not None else "csv",
    )
    return Status(
        201,
        {
            "id": batch.pk,
            "workflow": workflow.slug,
            "size": batch.size,
            "runs": list(batch.runs.order_by("id").values_list("id", flat=True)),
        },
    )


@router.get("/{int:run_id}", response={200: RunOut, **ERRORS})
def get_run(request: HttpRequest, run_id: RunId) -> dict:
    """Read a run: status, context (secrets redacted), current node, steps."""
    return run_detail(_run(request, run_id))


@router.get("/{int:run_id}/events", response={200: list[EventOut], **ERRORS})
@paginate(Page)
def run_events(request: HttpRequest, run_id: RunId, filters: Query[EventFilter]) -> Mapped:
    """The run's events after seq `after`, oldest first."""
    run = _run(request, run_id)
    require(request, policy.EVENTS_VIEW)
    return Mapped(Event.objects.filter(run=run, seq__gt=filters.after).order_by("seq"), event_out)


@router.post("/{int:run_id}/cancel", response={200: RunOut, **ERRORS})
def cancel_run(request: HttpRequest, run_id: RunId, payload: CancelIn | None = None) -> dict:
    """Cancel a run that has not ended (409 when it has)."""
    run = _run(request, run_id)
    user = require(request, policy.RUNS_CANCEL)
    reason = (payload.reason if payload else "").strip() or "cancelled through the API"
    run_cancel(run_id=run.pk, actor=user, reason=reason)
    return run_detail(get_object_or_404(Run, pk=run.pk))


@router.post("/{int:run_id}/fork", response={201: RunOut, **ERRORS})
def fork_run(request: HttpRequest, run_id: RunId, payload: ForkIn) -> Status:
    """Start a new run from the state right after event `at_seq` of this one."""
    run = _run(request, run_id)
    user = require(request, policy.RUNS_FORK)
    child = run_fork(run_id=run.pk, at_seq=payload.at_seq, context=payload.context, actor=user)
    return Status(201, run_detail(child))
