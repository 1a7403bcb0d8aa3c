"""GET /metrics (Prometheus), the operations dashboard and the SLA report."""

from __future__ import annotations

import csv
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentos_site import policy
from observability import reports
from observability.metrics import registry
from observability.periods import PeriodInvalid, sla_period


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve the agentos_ metrics to a caller with AGENTOS_METRICS_TOKEN."""
    expected = settings.AGENTOS_METRICS_TOKEN
    if not expected:
        raise Http404("metrics are off (AGENTOS_METRICS_TOKEN is unset)")
    if not hmac.compare_digest(_bearer(request).encode(), expected.encode()):
        response = HttpResponse("a valid Bearer token is required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def operations_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """An admin page (login first) for people who may see the operations figures."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not policy.allows(request.user, policy.OPERATIONS_VIEW):
            raise PermissionDenied("you may not see the operations figures")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(require_GET(checked))


@operations_view
def dashboard(request: HttpRequest) -> HttpResponse:
    """The operations dashboard: charts drawn from dashboard_data, kept live."""
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "data": reports.dashboard_data(),
    }
    return TemplateResponse(request, "admin/observability/dashboard.html", context)


@operations_view
def dashboard_data(request: HttpRequest) -> JsonResponse:
    """The dashboard's figures as JSON (fetched again when something changes)."""
    return JsonResponse(reports.dashboard_data())


def sla_csv(rows: list[reports.SlaRow], start: datetime, end: datetime) -> HttpResponse:
    """Return the SLA report as a CSV download, one line per workflow or group."""
    last = (end - timedelta(days=1)).date()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="agentos-sla-{start.date()}-{last}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(reports.SLA_FIELDS)
    for row in rows:
        data = row.as_dict()
        writer.writerow(
            ["" if data[f] is None else _csv_cell(data[f]) for f in reports.SLA_FIELDS]
        )
    return response


def _csv_cell(value: Any) -> Any:
    # A name starting with = + - @ would be a formula in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, float):
        return round(value, 3)
    return value


@operations_view
def sla(request: HttpRequest) -> HttpResponse:
    """The SLA report for a chosen period, as a page or (format=csv) a CSV file."""
    try:
        start, end = sla_period(request.GET.get("start"), request.GET.get("end"))
    except PeriodInvalid as exc:
        if request.GET.get("format") == "csv":
            return JsonResponse({"errors": exc.errors}, status=400)
        context = {
            **admin.site.each_context(request),
            "title": "SLA report",
            "errors": exc.errors,
            "start": request.GET.get("start", ""),
            "end": request.GET.get("end", ""),
        }
        return TemplateResponse(request, "admin/observability/sla.html", context, status=400)
    rows = reports.sla_report(start, end)
    if request.GET.get("format") == "csv":
        return sla_csv(rows, start, end)
    context = {
        **admin.site.each_context(request),
        "title": "SLA report",
        "rows": rows,
        "start": start.date().isoformat(),
        "end": (end - timedelta(days=1)).date().isoformat(),
    }
    return TemplateResponse(request, "admin/observability/sla.html", context)
