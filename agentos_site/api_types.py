"""Strictly parsed API parameter types."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

# A calendar date, optionally with a time and a UTC offset: ISO 8601's
# extended format (RFC 3339 is a subset). Pydantic alone also takes numbers
# and numeric strings as Unix timestamps (`until=0.5`), which no one means.
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)
ISO_MESSAGE = "must be an ISO 8601 date or date-time, e.g. 2026-01-31T09:00:00Z"


def _iso_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_8601.fullmatch(value):
        raise PydanticCustomError("iso_8601", ISO_MESSAGE)
    return value


def _aware(value: datetime) -> datetime:
    # A time without an offset is read as UTC, the server's clock.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


IsoDateTime = Annotated[
    datetime,
    BeforeValidator(_iso_text),
    AfterValidator(_aware),
    Field(description="ISO 8601, e.g. 2026-01-31T09:00:00Z (no offset: UTC)."),
]
