"""`{% inbox_counts as counts %}`: the inbox's counts for the admin's index."""

from __future__ import annotations

from typing import Any

from django import template

from approvals.permissions import may_view_requests
from approvals.selectors import inbox_counts as counts_for

register = template.Library()


@register.simple_tag(takes_context=True)
def inbox_counts(context: dict[str, Any]) -> dict[str, int] | None:
    """Return pending, mine and overdue for the page's user, or None if no inbox."""
    user = context["request"].user
    return counts_for(user) if may_view_requests(user) else None
