"""Helpers shared by the command-line management commands."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from agentos_common import limits
from workflows.plans import PlanInvalid


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``key=value`` pairs into a dict; values are JSON when they parse."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set {pair!r}: expected key=value")
        try:
            values[key.strip()] = limits.loads(raw)
        except ValueError:
            values[key.strip()] = raw
    return values


def user_named(username: str, *, perm: str) -> Any:
    """Return the active user, or fail unless they hold ``perm``."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"--as: no active user {username!r}")
    if not user.has_perm(perm):
        raise CommandError(f"--as: {username} may not do this (needs {perm})")
    return user


def plan_errors(exc: PlanInvalid) -> CommandError:
    """Return a CommandError listing every problem, one per line."""
    lines = [f"  {e.node or '-'} {e.field or '-'}: {e.message}" for e in exc.errors]
    return CommandError("refused:\n" + "\n".join(lines))
