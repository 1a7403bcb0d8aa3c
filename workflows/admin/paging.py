"""Admin paging that never counts a whole table."""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Paginator

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Count at most COUNT_CAP rows (plus one, to know there are more).

    The change list then offers the first COUNT_CAP / per_page pages and says
    "more than COUNT_CAP"; filters and search narrow the rest.
    """

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        return min(self.object_list[: self.cap + 1].count(), self.cap + 1)

    @property
    def capped(self) -> bool:
        return self.count > self.cap
