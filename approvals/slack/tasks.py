"""django-q2 entry points for Slack: ids in, services do the work."""

from __future__ import annotations


def message_sync(request_id: int, post: bool = False) -> str:
    """Post or update one request's Slack message (retries itself later)."""
    from approvals.slack.services import message_sync as sync

    return sync(request_id=request_id, post=post)
