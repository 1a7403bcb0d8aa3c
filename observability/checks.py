"""System checks for observability settings (ids agentos.O001...)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_observability(app_configs: Any = None, **_: Any) -> list:
    problems: list = []
    beat = settings.AGENTOS_HEARTBEAT_S
    live = settings.AGENTOS_HEARTBEAT_LIVE_S
    if beat * 2 > live:
        problems.append(
            Error(
                f"AGENTOS_HEARTBEAT_S ({beat}) must be at most half of "
                f"AGENTOS_HEARTBEAT_LIVE_S ({live}), or a live worker that "
                "misses one beat counts as dead.",
                id="agentos.O001",
            )
        )
    if settings.AGENTOS_LOG_FORMAT not in ("plain", "json"):
        problems.append(
            Error(
                f"AGENTOS_LOG_FORMAT must be plain or json, not {settings.AGENTOS_LOG_FORMAT!r}.",
                id="agentos.O002",
            )
        )
    token = settings.AGENTOS_METRICS_TOKEN
    if token and len(token) < 16:
        problems.append(
            Warning(
                "AGENTOS_METRICS_TOKEN is shorter than 16 characters: anyone who "
                "guesses it reads the metrics.",
                id="agentos.O003",
            )
        )
    return problems
