"""The period of an SLA report, from user input: checked, bounded, named errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone

MAX_DAYS = 366
DEFAULT_DAYS = 30


class PeriodInvalid(ValueError):
    """A bad period; `errors` maps each offending field to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _day(raw: str | date | None, name: str, errors: dict[str, str]) -> date | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        errors[name] = "give a date as YYYY-MM-DD"
        return None


def sla_period(start: str | date | None, end: str | date | None) -> tuple[datetime, datetime]:
    """Return [start, end) in UTC for the days `start`..`end` (both included).

    Without `end`, today; without `start`, DEFAULT_DAYS before `end`.
    """
    errors: dict[str, str] = {}
    first = _day(start, "start", errors)
    last = _day(end, "end", errors)
    if errors:
        raise PeriodInvalid(errors)
    last = last or timezone.now().astimezone(UTC).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise PeriodInvalid({"start": "the start is after the end"})
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodInvalid({"start": f"a period covers at most {MAX_DAYS} days"})
    begin = datetime.combine(first, time.min, tzinfo=UTC)
    return begin, datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
