"""The whole event log for auditors: JSON pages, or a JSON Lines / CSV export."""

from typing import Literal

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.pagination import paginate
from pydantic import Field

from agentos_site import policy
from agentos_site.api_errors import ERRORS
from agentos_site.api_pagination import MAX_ID, Mapped, Page
from agentos_site.api_types import IsoDateTime
from workflows.api.catalog import require
from workflows.audit import audit_events, audit_exported, export_csv, export_jsonl
from workflows.schemas import AuditEventOut
from workflows.selectors import event_out

router = Router(tags=["audit"])


class AuditFilter(Schema):
    after: int = Field(0, ge=0, le=MAX_ID, description="Only events with a greater id.")
    since: IsoDateTime | None = Field(None, description="From this time (inclusive).")
    until: IsoDateTime | None = Field(None, description="Up to this time (exclusive).")


class ExportFilter(AuditFilter):
    format: Literal["jsonl", "csv"] = "jsonl"


@router.get("", response={200: list[AuditEventOut], **ERRORS})
@paginate(Page)
def audit(request: HttpRequest, filters: Query[AuditFilter]) -> Mapped:
    """Every event in the order it was written (auditors)."""
    require(request, policy.AUDIT_EXPORT)
    events = audit_events(after=filters.after, since=filters.since, until=filters.until)
    return Mapped(events, event_out)


EXPORT_CONTENT = {
    "200": {
        "description": "The events as JSON Lines or CSV, oldest first.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
}


@router.get("/export", response=ERRORS, openapi_extra={"responses": EXPORT_CONTENT})
def audit_export(request: HttpRequest, filters: Query[ExportFilter]) -> StreamingHttpResponse:
    """Download the log for a time range as JSON Lines or CSV (auditors)."""
    require(request, policy.AUDIT_EXPORT)
    events = audit_events(after=filters.after, since=filters.since, until=filters.until)
    audit_exported(
        actor=request.user,
        since=filters.since,
        until=filters.until,
        format=filters.format,
        after=filters.after,
    )
    if filters.format == "csv":
        response = StreamingHttpResponse(export_csv(events), content_type="text/csv")
    else:
        response = StreamingHttpResponse(export_jsonl(events), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="agentos-audit.{filters.format}"'
    return response
