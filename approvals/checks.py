"""System checks for the approvals app's integrations."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register


@register()
def check_slack(app_configs: Any, **kwargs: Any) -> list:
    """Slack with a bot token but no signing secret refuses every click."""
    if settings.AGENTOS_SLACK_BOT_TOKEN and not settings.AGENTOS_SLACK_SIGNING_SECRET:
        return [
            Warning(
                "AGENTOS_SLACK_BOT_TOKEN is set but AGENTOS_SLACK_SIGNING_SECRET is not: "
                "requests are posted to Slack, but every button is refused (401)",
                hint="set it to the Signing Secret of the Slack app (docs/integrations.md)",
                id="agentos.W021",
            )
        ]
    return []
