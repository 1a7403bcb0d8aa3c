"""The planner: a request in plain language becomes a plan people can review.

"The LLM suggests, only registered Python acts." Two providers sit behind
one interface, chosen by ``AGENTOS_PLANNER``: ``builtin`` (the default:
deterministic phrasings, no network) and ``openai`` (any OpenAI-compatible
chat-completions server: Ollama, vLLM, hosted APIs). Whatever a provider
drafts is validated by the safe router before anyone sees it as runnable;
a draft that fails is never half-returned as valid.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from workflows import executor_config
from workflows.planner.base import MAX_TEXT_CHARS, PlannerError
from workflows.plans import validate_plan

__all__ = ["MAX_TEXT_CHARS", "PlannerError", "draft", "provider_name"]

PROVIDERS = ("builtin", "openai")


def provider_name() -> str:
    """Return the configured provider's name."""
    return settings.AGENTOS_PLANNER


def draft(text: str, *, provider: str | None = None) -> dict[str, Any]:
    """Turn ``text`` into ``{"plan", "valid", "errors", "provider"}``.

    ``plan`` is None when nothing could be drafted (unparsable request, an
    unreachable or refusing model, malformed output); ``errors`` then says
    why, as ``[{"node", "field", "message"}]`` like plan validation does.
    """
    name = provider or provider_name()
    if name not in PROVIDERS:
        return _failed(name, "planner", f"unknown planner {name!r}; use builtin or openai")
    if not isinstance(text, str) or not text.strip():
        return _failed(
            name,
            "text",
            "describe what should be done, e.g. 'move the PDFs in Downloads to Reports'",
        )
    if len(text) > MAX_TEXT_CHARS:
        return _failed(name, "text", f"at most {MAX_TEXT_CHARS} characters")
    registry, policy = executor_config.registry(), executor_config.policy()
    try:
        if name == "builtin":
            from workflows.planner.builtin import plan_for

            plan = plan_for(text.strip())
            errors = validate_plan(plan, registry=registry, policy=policy)
        else:
            from workflows.planner.llm import LLMPlanner

            plan, errors = LLMPlanner.from_settings().draft(text.strip(), registry, policy)
    except PlannerError as exc:
        return _failed(name, exc.field, str(exc))
    return {
        "plan": plan,
        "valid": not errors,
        "errors": [e.as_dict() for e in errors],
        "provider": name,
    }


def _failed(provider: str, field: str, message: str) -> dict[str, Any]:
    return {
        "plan": None,
        "valid": False,
        "errors": [{"node": "", "field": field, "message": message}],
        "provider": provider,
    }
