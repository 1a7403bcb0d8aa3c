"""Approval requests over the API: list those the caller may see, read, decide."""

from typing import Annotated, Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema
from ninja.pagination import paginate
from pydantic import Field

from agentos_common.canonical import canonical_digest
from agentos_site import policy
from agentos_site.api_errors import ERRORS, Conflict
from agentos_site.api_pagination import MAX_ID, Mapped, Page
from approvals.models import ApprovalRequest
from approvals.schemas import ApprovalOut, DecisionIn
from approvals.services import approval_decide
from workflows.selectors import redact

router = Router(tags=["approvals"])
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]


class ApprovalFilter(Schema):
    status: Literal["pending", "approved", "rejected", "cancelled", "all"] = "pending"
    run: int | None = Field(None, ge=1, le=MAX_ID)


def request_digest(request: ApprovalRequest) -> str:
    """Return the digest of what is asked (the model's own when it has one)."""
    stored = getattr(request, "digest", "")
    if stored:
        return str(stored)
    body = {
        "run": request.run_id,
        "node": request.node_id,
        "position": request.position,
        "kind": request.kind,
        "title": request.title,
        "fields": request.fields,
    }
    return canonical_digest(body)


def approval_out(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": request.pk,
        "run": request.run_id,
        "node": request.node_id,
        "node_path": request.node_path or request.node_id,
        "kind": request.kind,
        "title": request.title,
        "description": redact(request.description),
        "fields": request.fields,
        "values": redact(request.values),
        "status": request.status,
        "digest": request_digest(request),
        "assigned_to": request.assigned_group.name if request.assigned_group_id else None,
        "created_at": request.created_at,
        "decided_by": request.decided_by.get_username() if request.decided_by_id else None,
        "decided_at": request.decided_at,
        "comment": request.comment,
        "resolution": request.resolution,
    }


def _visible(request: HttpRequest) -> Any:
    user = request.auth  # type: ignore[attr-defined]
    if not (policy.allows(user, policy.APPROVALS_VIEW) or policy.may_decide_at_all(user)):
        raise PermissionDenied("you may not see approval requests")
    return policy.visible_requests(
        user, ApprovalRequest.objects.select_related("assigned_group", "decided_by")
    )


@router.get("", response={200: list[ApprovalOut], **ERRORS})
@paginate(Page)
def list_approvals(request: HttpRequest, filters: Query[ApprovalFilter]) -> Mapped:
    """List the requests the caller may see; pending ones unless asked otherwise."""
    requests = _visible(request).order_by("-created_at", "-id")
    if filters.status != "all":
        requests = requests.filter(status=filters.status)
    if filters.run is not None:
        requests = requests.filter(run_id=filters.run)
    return Mapped(requests, approval_out)


@router.get("/{request_id}", response={200: ApprovalOut, **ERRORS})
def get_approval(request: HttpRequest, request_id: RequestId) -> dict:
    """What is asked: title, fields schema, current values, digest, assignment."""
    return approval_out(_visible(request).get(pk=request_id))


@router.post("/{request_id}/decision", response={200: ApprovalOut, **ERRORS})
def decide(request: HttpRequest, request_id: RequestId, payload: DecisionIn) -> dict:
    """Approve (with values) or reject (with a reason); 409 when already decided."""
    if not policy.may_decide_at_all(request.auth):  # type: ignore[attr-defined]
        raise PermissionDenied("you do not have the right to decide requests")
    approval = _visible(request).get(pk=request_id)
    if payload.digest and payload.digest != request_digest(approval):
        raise Conflict("the request changed since you read it (digest differs)")
    # The service re-checks the guards' digest under the run's lock, so a
    # change between this read and the decision is refused too.
    decided = approval_decide(
        request_id=approval.pk,
        actor=request.auth,  # type: ignore[attr-defined]
        decision=payload.decision,
        values=payload.values,
        comment=payload.comment,
        resolution=payload.resolution or "",
        digest=approval.digest if payload.digest and approval.digest else None,
    )
    decided.refresh_from_db()
    return approval_out(
        ApprovalRequest.objects.select_related("assigned_group", "decided_by").get(pk=decided.pk)
    )
