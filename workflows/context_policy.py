"""Check a run's starting context against the policy before the run exists.

The plan validator checks literal parameters only: `path: "{{ folder }}"`
cannot be judged until the context is known. At start the context *is*
known for every reference to a starting input, so those parameters are
rendered and checked with the same `policy_errors` the child runs later; a
folder outside the roots or a host off the allow-list is refused at the
start form (beside its field) and by `POST /runs`, not when the step runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from executors.base import Policy
from executors.registry import Registry, UnknownAction
from workflows import templating
from workflows.plans import PlanError


def _action_nodes(nodes: Any) -> Iterator[dict[str, Any]]:
    """Yield every action node, inside blocks too (parallel branches, map bodies)."""
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        if node.get("type", "action") == "action" and isinstance(node.get("params"), dict):
            yield node
        for branch in node.get("branches") or []:
            if isinstance(branch, dict):
                yield from _action_nodes(branch.get("nodes"))
        yield from _action_nodes(node.get("nodes"))


def context_policy_errors(
    plan: Any, context: dict[str, Any], *, registry: Registry, policy: Policy
) -> list[PlanError]:
    """Return policy problems of parameters rendered from the starting context.

    Each error names the context key it comes from (`context.folder`), so a
    form shows it beside that input; a parameter built from several keys
    names the first. Parameters that need a value the run produces later
    are left to the child's own check.
    """
    errors: list[PlanError] = []
    if not isinstance(plan, dict) or not isinstance(context, dict):
        return errors
    for node in _action_nodes(plan.get("nodes")):
        try:
            action = registry.get(str(node.get("action", "")))
        except UnknownAction:
            continue  # the plan validator reports it
        rendered: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, value in node["params"].items():
            refs = list(templating.references(value))
            if not refs:
                continue
            missing: set[str] = set()
            result = templating.render(value, context, missing)
            if missing:
                continue
            rendered[name] = result
            sources[name] = templating.root_key(refs[0])
        if not rendered:
            continue
        for field, message in action.policy_errors(rendered, policy):
            top = field.split(".", 1)[0]
            key = sources.get(top)
            where = f"context.{key}" if key else f"params.{field}"
            step = str(node.get("id", ""))
            error = (
                PlanError("", where, f"{message} (used by step {step})")
                if key
                else PlanError(step, where, message)
            )
            if error not in errors:
                errors.append(error)
    return errors
