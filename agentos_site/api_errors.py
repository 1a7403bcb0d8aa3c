"""One JSON error shape for the whole API, and the handler of every domain error.

Every error is `{"detail": str, "errors": [{"field", "message", ...}]}`:
`field` names the offending input (a body path, a header, a query
parameter), `node` and `row` say where in a plan or batch.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError


class FieldError(Schema):
    field: str
    message: str
    node: str | None = None
    row: int | None = None


class ErrorOut(Schema):
    detail: str
    errors: list[FieldError] = []


ERROR_CODES = (400, 401, 403, 404, 409, 422, 429)
ERRORS: dict[int, Any] = {code: ErrorOut for code in ERROR_CODES}


class RateLimited(Exception):
    """A token client sent too many requests (HTTP 429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry after {retry_after} s")
        self.retry_after = retry_after


class Conflict(Exception):
    """The request contradicts the current state (HTTP 409)."""


def error_response(
    api: NinjaAPI, request: HttpRequest, status: int, detail: str, errors: list[dict] | None = None
) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "errors": errors or []}, status=status)


def _location(loc: list[Any] | tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "form", "cookie"):
        source, parts = parts[0], parts[1:]
        # The body's single parameter name (payload) is not part of the API.
        if source == "body" and parts and parts[0] == "payload":
            parts = parts[1:]
        return ".".join(parts) or source
    return ".".join(parts)


def install_handlers(api: NinjaAPI) -> None:
    """Map every domain exception to its status and the one error shape."""
    from approvals.exceptions import AlreadyDecided, DecisionInvalid, DecisionRefused
    from workflows.exceptions import (
        BatchInvalid,
        EventImmutable,
        IdempotencyKeyReused,
        PlanInvalid,
        ReplayError,
        RunNotFound,
        TransitionNotAllowed,
    )

    def handle(exc_class: type[Exception]) -> Any:
        return api.exception_handler(exc_class)

    @handle(ValidationError)
    def validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {"field": _location(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in exc.errors
        ]
        return error_response(api, request, 422, "the request is not valid", errors)

    @handle(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
        response = error_response(
            api,
            request,
            401,
            "authentication required",
            [{"field": "Authorization", "message": "send a valid Bearer token or a session"}],
        )
        response["WWW-Authenticate"] = "Bearer"
        return response

    @handle(PermissionDenied)
    def forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(api, request, 403, str(exc) or "permission denied")

    @handle(DecisionRefused)
    def refused(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(api, request, 403, str(exc))

    for missing in (Http404, ObjectDoesNotExist, RunNotFound):

        @handle(missing)
        def not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
            return error_response(api, request, 404, str(exc) or "not found")

    @handle(PlanInvalid)
    def plan_invalid(request: HttpRequest, exc: PlanInvalid) -> HttpResponse:
        errors = [
            {"field": e.field or "plan", "message": e.message, "node": e.node or None}
            for e in exc.errors
        ]
        return error_response(api, request, 400, "the request was refused", errors)

    @handle(ReplayError)
    def replay_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(
            api, request, 400, str(exc), [{"field": "at_seq", "message": str(exc)}]
        )

    @handle(BatchInvalid)
    def batch_invalid(request: HttpRequest, exc: BatchInvalid) -> HttpResponse:
        errors = [
            {"field": e.column or "row", "message": e.message, "row": e.row} for e in exc.errors
        ]
        return error_response(
            api, request, 400, "no run was started: the batch has errors", errors
        )

    @handle(DecisionInvalid)
    def decision_invalid(request: HttpRequest, exc: DecisionInvalid) -> HttpResponse:
        errors = [
            {
                "field": k
                if k in ("decision", "comment", "resolution", "values")
                else f"values.{k}",
                "message": v,
            }
            for k, v in exc.errors.items()
        ]
        return error_response(api, request, 400, "the decision was refused", errors)

    @handle(TransitionNotAllowed)
    def transition(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(api, request, 409, str(exc))

    @handle(AlreadyDecided)
    def decided(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(api, request, 409, str(exc))

    @handle(Conflict)
    def conflict(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(api, request, 409, str(exc))

    @handle(IdempotencyKeyReused)
    def key_reused(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(
            api, request, 409, str(exc), [{"field": "Idempotency-Key", "message": str(exc)}]
        )

    @handle(EventImmutable)
    def immutable(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(api, request, 409, str(exc))

    @handle(RateLimited)
    def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
        response = error_response(api, request, 429, str(exc))
        response["Retry-After"] = str(exc.retry_after)
        return response

    @handle(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return error_response(api, request, exc.status_code, str(exc))
