"""Refuse NUL characters and over-deep JSON at the door, naming where they were.

PostgreSQL stores neither a NUL in text nor ``\\u0000`` in jsonb: a NUL that
reached a query or a save would be a 500 there (and a different answer on
SQLite). Django's form fields already refuse NUL; this covers what forms do
not see: the URL path, query parameters, the headers the API reads, and JSON
bodies. The API gets its one error shape; other pages a plain 400.

JSON nested deeper than ``agentos_common.limits.MAX_DEPTH`` is refused here too,
before anything parses it: Python's parser, ``copy.deepcopy`` and the
validators all recurse, and a body a few hundred levels deep would end in
``RecursionError`` (a 500) wherever it first met one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from agentos_common import limits
from agentos_common.nul import NUL_MESSAGE, first_nul

API_PREFIX = "/api/"


def _printable(name: str) -> str:
    return name.replace("\x00", "\\x00")


def _nul_field(request: HttpRequest) -> tuple[int, str] | None:
    """Return (status, field) for the first NUL in the request, or None."""
    if "\x00" in request.path:
        return 400, "path"
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return 400, f"query.{_printable(key)}"
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            return 400, "header." + key[5:].replace("_", "-").title()
    body = request.body if request.content_type == "application/json" else b""
    # JSON can only carry a NUL as the escape \u0000, so most bodies are
    # passed over without parsing them twice.
    if b"\\u0000" in body:
        try:
            found = first_nul(limits.loads(body))
        except ValueError:
            return None  # not JSON (or too deep): the view's parser answers that
        if found is not None:
            return 422, found or "body"
    return None


def _json_body(request: HttpRequest) -> bytes:
    """Return the body the API or a JSON view will parse as JSON, else b"".

    The API parses any body as JSON whatever its type; form posts and
    uploads are left alone (reading them here would load whole files).
    """
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return b""
    if request.content_type == "application/json" or request.path.startswith(API_PREFIX):
        return request.body
    return b""


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if limits.text_depth(_json_body(request)) > limits.MAX_DEPTH:
            return self._refuse(request, 400, "body", str(limits.TooDeep()))
        found = _nul_field(request)
        if found is None:
            return self.get_response(request)
        status, field = found
        return self._refuse(request, status, field, NUL_MESSAGE)

    @staticmethod
    def _refuse(request: HttpRequest, status: int, field: str, message: str) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            return JsonResponse(
                {
                    "detail": "the request is not valid",
                    "errors": [{"field": field, "message": message}],
                },
                status=status,
            )
        return HttpResponseBadRequest(f"{field} {message}", content_type="text/plain")


# Headers of an error answer that carry meaning and are kept when its body is
# replaced.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _api_error_detail(status: int) -> tuple[str, list[dict[str, str]]]:
    if status == 404:
        return "no such resource", [{"field": "path", "message": "matches no resource"}]
    if status == 405:
        return "method not allowed", [{"field": "method", "message": "not allowed on this path"}]
    if status >= 500:
        return "internal server error", []
    try:
        return HTTPStatus(status).phrase.lower(), []
    except ValueError:
        return "the request failed", []


class ApiJsonErrorsMiddleware:
    """Answer every error under /api/ in the API's JSON error shape.

    Ninja's own handlers answer what reaches an operation. What does not is
    answered by Django or by ninja's router in HTML or plain text: a path
    (or a path parameter of the wrong type) that matches no route, a method
    the path does not allow (405), a body over DATA_UPLOAD_MAX_MEMORY_SIZE,
    an exception no handler maps (500, still logged by Django). Placed first
    in MIDDLEWARE, this sees each of those answers and keeps its status and
    meaningful headers but gives it the `{"detail", "errors"}` body.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        detail, errors = _api_error_detail(response.status_code)
        replaced = JsonResponse({"detail": detail, "errors": errors}, status=response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                replaced[header] = response[header]
        return replaced


class SynchronousChainMiddleware:
    """Keep daphne's middleware chain synchronous: last in MIDDLEWARE, does nothing.

    Under ASGI, Django runs each middleware in the mode of the one inside
    it. Most can run either way, whitenoise (in the middle) only
    synchronously: Django ran those inside it (session, CSRF, user,
    messages, axes) in async mode, and each of their steps crossed from
    daphne's event loop into a thread and back, about a dozen hand-overs
    per request (on the path of the inbox's approve, each a wake-up of
    another thread on a busy machine). Innermost and synchronous, this
    makes the whole chain run in the request's one thread.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
