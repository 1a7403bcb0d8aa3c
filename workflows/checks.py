"""System checks for the engine's configuration."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_queue(app_configs: Any, **kwargs: Any) -> list:
    """The broker must not redeliver a task that is still running."""
    problems = []
    q = settings.Q_CLUSTER
    if q.get("timeout") and q.get("retry") and q["retry"] <= q["timeout"]:
        problems.append(
            Error(
                "Q_CLUSTER retry must be larger than timeout, or a task runs twice",
                id="agentos.E001",
            )
        )
    if not q.get("max_attempts"):
        problems.append(
            Error("Q_CLUSTER max_attempts must be set; 0 retries for ever", id="agentos.E002")
        )
    if settings.AGENTOS_TASK_BUDGET_S + settings.AGENTOS_MAX_NODE_TIMEOUT_S >= q.get("timeout", 0):
        problems.append(
            Warning(
                "a task's budget plus the longest step may exceed the queue timeout",
                id="agentos.W001",
            )
        )
    if settings.AGENTOS_LEASE_SECONDS < 1:
        problems.append(Error("AGENTOS_LEASE_SECONDS must be at least 1", id="agentos.E003"))
    return problems


@register()
def check_actions(app_configs: Any, **kwargs: Any) -> list:
    """Every configured action module must load into the registry."""
    from workflows import executor_config

    try:
        executor_config.registry()
    except Exception as exc:  # reported as a check failure
        return [Error(f"the action registry failed to load: {exc}", id="agentos.E004")]
    return [
        Warning(
            f"the actions of the package {problem.package} {problem.version} were not "
            f"loaded: {problem.message}",
            hint=f"entry point {problem.entry_point} (group agentos.actions); fix or "
            "uninstall the package, the other actions work without it",
            id="agentos.W020",
        )
        for problem in executor_config.registry().plugin_problems
    ]


@register()
def check_planner(app_configs: Any, **kwargs: Any) -> list:
    """The OpenAI-compatible planner needs a server and a model."""
    if settings.AGENTOS_PLANNER == "openai" and not (
        settings.AGENTOS_LLM_BASE_URL and settings.AGENTOS_LLM_MODEL
    ):
        return [
            Warning(
                "AGENTOS_PLANNER=openai needs AGENTOS_LLM_BASE_URL and "
                "AGENTOS_LLM_MODEL; every draft will fail until they are set",
                id="agentos.W006",
            )
        ]
    return []


@register(deploy=True)
def check_action_user(app_configs: Any, **kwargs: Any) -> list:
    """Warn when a root worker would run actions as root (issue 10, item 14)."""
    from workflows import executor_config

    sandbox = executor_config.sandbox()
    if os.geteuid() != 0 or sandbox.user.lower() == "none" or sandbox.resolve().drops:
        return []
    return [
        Warning(
            f"actions would run as root: the user {sandbox.user!r} (AGENTOS_ACTION_USER) does "
            "not exist",
            hint="run scripts/setup.sh as root to create it (docs/security.md)",
            id="agentos.W014",
        )
    ]
