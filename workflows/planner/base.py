"""What every planner provider shares."""

from __future__ import annotations

MAX_TEXT_CHARS = 4000


class PlannerError(Exception):
    """Nothing could be drafted; ``str(exc)`` says why, ``field`` where.

    ``final`` marks an answer no repair round should question (a refusal).
    """

    def __init__(self, message: str, *, field: str = "text", final: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.final = final
