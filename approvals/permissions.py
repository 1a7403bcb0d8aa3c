"""Who may see and decide requests: re-exports the one policy in agentos_site.policy."""

from agentos_site.policy import (
    decidable_by,
    decide_refusal,
    may_decide_at_all,
    may_view_requests,
    may_view_run,
    self_approval_allowed,
    visible_requests,
)

__all__ = [
    "decidable_by",
    "decide_refusal",
    "may_decide_at_all",
    "may_view_requests",
    "may_view_run",
    "self_approval_allowed",
    "visible_requests",
]
