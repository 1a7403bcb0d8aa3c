"""Give every request a correlation id: the caller's, when sane, or a new one."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from agentos_site import correlation


class CorrelationIdMiddleware:
    """Bind the request's correlation id for its log lines; echo it in the answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = correlation.valid_id(request.headers.get(correlation.HEADER))
        value = given or correlation.new_id()
        request.correlation_id = value  # type: ignore[attr-defined]
        with correlation.bound(correlation_id=value):
            response = self.get_response(request)
        response[correlation.HEADER] = value
        return response
