"""Approvals in Slack: post requests, take decisions from buttons and modals.

- ``client``: the few Web API methods used, with Slack's errors and 429s as
  ``SlackError`` (retriable or not).
- ``blocks``: Block Kit for a request's message and its modals.
- ``signing``: Slack's v0 request signature.
- ``services``: open, sync and decide; ``tasks`` are their worker entry
  points; ``views`` is POST /integrations/slack/interactions.

Slack is a second window on the inbox, never a way around it: every
decision goes through ``approvals.services.approval_decide``, and every
Slack call happens outside the transactions that change a run, so an
outage delays a message, never a run or a decision.
"""

from django.conf import settings


def enabled() -> bool:
    """Return whether Slack is configured (a bot token is set)."""
    return bool(settings.AGENTOS_SLACK_BOT_TOKEN)
