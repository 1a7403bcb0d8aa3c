"""Health, the action registry, plan validation and workflows."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from ninja.pagination import paginate

from agentos_site import policy
from agentos_site.api_errors import ERRORS
from agentos_site.api_pagination import Page
from workflows import executor_config
from workflows.models import Workflow
from workflows.planner import draft
from workflows.plans import PlanError, PlanInvalid, parse_spec_text, validate_plan
from workflows.schemas import (
    ActionOut,
    DraftIn,
    DraftOut,
    HealthOut,
    PlanIn,
    PlanValidationOut,
    WorkflowIn,
    WorkflowOut,
)
from workflows.services import workflow_create, workflow_update

router = Router()


def require(request: HttpRequest, operation: str) -> Any:
    """Return the caller, or raise PermissionDenied unless the policy allows it."""
    user = request.auth  # type: ignore[attr-defined]
    if not policy.allows(user, operation):
        raise PermissionDenied(f"you may not do this ({operation})")
    return user


@router.get("/health", auth=None, response={200: HealthOut}, tags=["system"])
def health(request: HttpRequest) -> dict:
    """Report liveness, the database and the workers seen recently (no auth)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = True
    except Exception:  # any failure means "database down"
        database = False
    workers = 0
    if database:
        # Heartbeat rows, not django-q2's Stat: its cache does not cross
        # processes on the ORM broker (docs/observability.md).
        from observability.heartbeats import live_processes

        workers = live_processes().count()
    return {
        "status": "ok" if database else "degraded",
        "database": database,
        "workers": workers,
        "version": "1",
    }


@router.get("/actions", response={200: list[ActionOut], **ERRORS}, tags=["catalog"])
@paginate(Page)
def list_actions(request: HttpRequest, q: str = Query("", max_length=200)) -> list[dict]:
    """List the registered actions with their package and version, parameter and
    output JSON Schemas; ``q`` keeps those whose name, description or category
    contain every one of its words."""
    require(request, policy.WORKFLOWS_VIEW)
    return executor_config.registry().search(q)


@router.post("/plans/validate", response={200: PlanValidationOut, **ERRORS}, tags=["catalog"])
def plans_validate(request: HttpRequest, payload: PlanIn) -> dict:
    """Check a plan against the registry and policy; report every problem at once."""
    require(request, policy.WORKFLOWS_VIEW)
    errors = validate_plan(
        payload.plan, registry=executor_config.registry(), policy=executor_config.policy()
    )
    return {"valid": not errors, "errors": [e.as_dict() for e in errors]}


@router.post("/plans/draft", response={200: DraftOut, **ERRORS}, tags=["catalog"])
def plans_draft(request: HttpRequest, payload: DraftIn) -> dict:
    """Turn plain language into a validated plan (the planner); nothing runs."""
    require(request, policy.RUNS_START)
    return draft(payload.text)


def _workflow_out(workflow: Workflow) -> dict:
    return {
        "slug": workflow.slug,
        "title": workflow.title,
        "description": workflow.description,
        "version": workflow.version,
        "mode": workflow.mode,
        "spec": workflow.spec,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
    }


def _raw_spec(payload: WorkflowIn) -> tuple[Any, str]:
    if (payload.spec is None) == (payload.source is None):
        raise PlanInvalid([PlanError("", "spec", "give either spec or source")])
    if payload.source is not None:
        return parse_spec_text(payload.source), payload.source
    return payload.spec, ""


@router.get("/workflows", response={200: list[WorkflowOut], **ERRORS}, tags=["workflows"])
@paginate(Page)
def list_workflows(request: HttpRequest) -> list[dict]:
    """List the stored workflows (their current versions)."""
    require(request, policy.WORKFLOWS_VIEW)
    return [_workflow_out(w) for w in Workflow.objects.order_by("slug")]


@router.post("/workflows", response={201: WorkflowOut, **ERRORS}, tags=["workflows"])
def create_workflow(request: HttpRequest, payload: WorkflowIn) -> Status:
    """Create a workflow from a spec (object or YAML/JSON text)."""
    user = require(request, policy.WORKFLOWS_ADD)
    raw, source = _raw_spec(payload)
    return Status(201, _workflow_out(workflow_create(raw_spec=raw, source=source, actor=user)))


@router.get("/workflows/{slug}", response={200: WorkflowOut, **ERRORS}, tags=["workflows"])
def get_workflow(request: HttpRequest, slug: str) -> dict:
    """Read a workflow's current version."""
    require(request, policy.WORKFLOWS_VIEW)
    return _workflow_out(get_object_or_404(Workflow, slug=slug))


@router.put("/workflows/{slug}", response={200: WorkflowOut, **ERRORS}, tags=["workflows"])
def update_workflow(request: HttpRequest, slug: str, payload: WorkflowIn) -> dict:
    """Store a changed spec as a new version; running runs keep theirs."""
    user = require(request, policy.WORKFLOWS_CHANGE)
    workflow = get_object_or_404(Workflow, slug=slug)
    raw, source = _raw_spec(payload)
    return _workflow_out(
        workflow_update(workflow=workflow, raw_spec=raw, source=source, actor=user)
    )
