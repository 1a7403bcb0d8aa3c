"""Paging for every list: limit/offset with bounds, a capped count, items mapped
after slicing.

No list ever counts a whole table: `count` is exact up to COUNT_CAP matching
items (or up to the requested window when it lies deeper); past that it stops
counting and says so with `count_exact: false`. `next_offset` is where the
next page starts, or null on the last page, so a client can walk any list
without the total.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Schema
from ninja.pagination import LimitOffsetPagination
from pydantic import Field

MAX_LIMIT = 500
MAX_OFFSET = 10**9
MAX_ID = 2**63 - 1
COUNT_CAP = 10_000


def capped_count(rows: Any, cap: int) -> int:
    """Return how many rows there are, counting at most cap + 1 of them."""
    queryset = rows.all() if hasattr(rows, "all") else None
    if isinstance(queryset, QuerySet):
        return queryset[: cap + 1].count()
    return min(len(rows), cap + 1)


class Page(LimitOffsetPagination):
    """`?limit=&offset=` → `{"items", "count", "count_exact", "next_offset"}`."""

    class Input(Schema):
        limit: int = Field(50, ge=1, le=MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    class Output(Schema):
        items: list[Any]
        count: int = Field(description=f"Matching items; exact up to {COUNT_CAP}.")
        count_exact: bool = Field(description="False when counting stopped at the cap.")
        next_offset: int | None = Field(description="The next page's offset; null at the end.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_limit=MAX_LIMIT, **kwargs)

    def paginate_queryset(
        self, queryset: Any, pagination: Any, request: HttpRequest, **params: Any
    ) -> dict[str, Any]:
        offset, limit = pagination.offset, min(pagination.limit, self.max_limit)
        # One row more than asked tells whether another page follows.
        window = list(queryset[offset : offset + limit + 1])
        more = len(window) > limit
        items = window[:limit]
        if not more and (items or offset == 0):
            count, exact = offset + len(items), True  # the last page: no count query
        else:
            cap = max(COUNT_CAP, offset + limit)
            found = capped_count(queryset, cap)
            count, exact = min(found, cap), found <= cap
        return {
            "items": items,
            "count": count,
            "count_exact": exact,
            "next_offset": offset + limit if more else None,
        }


class Mapped:
    """A queryset that turns each row into its API shape only when sliced."""

    def __init__(self, queryset: QuerySet, to_out: Callable[[Any], Any]) -> None:
        self.queryset, self.to_out = queryset, to_out

    def all(self) -> QuerySet:
        return self.queryset

    def __len__(self) -> int:
        return self.queryset.count()

    def __getitem__(self, window: slice) -> list[Any]:
        return [self.to_out(row) for row in self.queryset[window]]
