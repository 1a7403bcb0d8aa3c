"""GET /api/v1/reports/sla: the SLA report for integrations (JSON or CSV)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Router, Schema
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from agentos_site import policy
from agentos_site.api_errors import ERRORS, error_response
from observability import reports
from observability.periods import PeriodInvalid, sla_period
from observability.views import sla_csv

router = Router()

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_text(value: Any) -> Any:
    # Pydantic alone also reads numbers (end=0) as Unix timestamps.
    if isinstance(value, date) or (isinstance(value, str) and _DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("iso_date", "must be a date as YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_date_text), Field(description="A UTC day, YYYY-MM-DD.")]


class SlaQuery(Schema):
    start: IsoDate | None = None
    end: IsoDate | None = None
    format: Literal["json", "csv"] = "json"


class SlaRowOut(Schema):
    by: Literal["workflow", "group"]
    name: str
    requests: int
    decided: int
    median_s: float | None
    p95_s: float | None
    overdue: int
    escalated: int
    timed_out: int


class SlaOut(Schema):
    start: date
    end: date
    items: list[SlaRowOut]


CSV_CONTENT = {
    "responses": {
        "200": {
            "description": "The report as JSON, or as CSV with format=csv.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SlaOut"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    }
}


@router.get("/sla", response={200: SlaOut, **ERRORS}, tags=["reports"], openapi_extra=CSV_CONTENT)
def sla(request: HttpRequest, params: Query[SlaQuery]) -> HttpResponse | dict:
    """Per workflow and per group: requests opened in [start, end], decisions, times."""
    if not policy.allows(request.auth, policy.OPERATIONS_VIEW):  # type: ignore[attr-defined]
        raise PermissionDenied("you may not read the SLA report")
    start, end = sla_period(params.start, params.end)
    rows = reports.sla_report(start, end)
    if params.format == "csv":
        return sla_csv(rows, start, end)
    last = (end - timedelta(days=1)).date()
    return {"start": start.date(), "end": last, "items": [r.as_dict() for r in rows]}


def install(api: NinjaAPI) -> None:
    """Mount the reports under /reports and answer a bad period with a 400."""
    api.add_router("/reports", router)

    @api.exception_handler(PeriodInvalid)
    def period_invalid(request: HttpRequest, exc: PeriodInvalid) -> HttpResponse:
        errors = [{"field": field, "message": message} for field, message in exc.errors.items()]
        return error_response(api, request, 400, "the period is not valid", errors)
