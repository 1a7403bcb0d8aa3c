"""The workflows app's domain errors, in one place for the API's handlers.

Each maps to one HTTP status (agentos_site/api_errors.py); the services raise
them, and the modules that raise them import them from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.batches import RowError
    from workflows.plans import PlanError

__all__ = [
    "BatchInvalid",
    "EventImmutable",
    "IdempotencyKeyReused",
    "PlanInvalid",
    "ReplayError",
    "RunNotFound",
    "ScheduleRefused",
    "TransitionNotAllowed",
]


class TransitionNotAllowed(Exception):
    """A service was asked to move a run along an edge the table lacks (HTTP 409)."""

    def __init__(self, source: str, target: str) -> None:
        super().__init__(f"a {source} run cannot become {target}")
        self.source = source
        self.target = target


class RunNotFound(Exception):
    """No run with that id."""


class PlanInvalid(Exception):
    """A plan or spec failed validation; nothing was run or saved."""

    def __init__(self, errors: list[PlanError]) -> None:
        super().__init__("; ".join(f"{e.node or '-'}.{e.field}: {e.message}" for e in errors))
        self.errors = errors


class ReplayError(Exception):
    """The requested point is not in the run's log (HTTP 400, field at_seq)."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key already started a run for another request (HTTP 409)."""


class BatchInvalid(Exception):
    """A batch failed validation; no run of it was started (HTTP 400)."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(f"row {e.row} {e.column}: {e.message}" for e in errors[:10]))
        self.errors = errors


class ScheduleRefused(Exception):
    """The person may not save this schedule (its runs would be theirs)."""


class EventImmutable(Exception):
    """Something tried to change or delete an event."""
