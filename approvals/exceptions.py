"""The approvals app's domain errors, in one place for the API's handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from approvals.models import ApprovalRequest

__all__ = ["AlreadyDecided", "DecisionInvalid", "DecisionRefused", "WebhookRefused"]


class AlreadyDecided(Exception):
    """The request was decided before this decision arrived (HTTP 409)."""

    def __init__(self, request: ApprovalRequest) -> None:
        who = request.decided_by.get_username() if request.decided_by else "the system"
        super().__init__(f"this request was already {request.status} by {who}")
        self.request = request
        self.decided_by = who


class DecisionRefused(Exception):
    """The person may not make this decision (HTTP 403)."""


class DecisionInvalid(Exception):
    """The submitted values or choice are wrong; `errors` maps field to message (HTTP 400)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class WebhookRefused(Exception):
    """A webhook's URL or key breaks policy; nothing was sent."""
