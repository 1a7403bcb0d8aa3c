"""GET /metrics (Prometheus), the operations dashboard and the SLA report."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from observability.metrics import registry


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
