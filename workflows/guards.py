"""What a gate guards: the exact, resolved parameters of the actions it lets run.

A person approves what they saw. The gate records the SHA-256 of the guarded
actions' resolved parameters; before a guarded step runs, the engine resolves
them again and runs the step only when the digest still matches.
"""

from __future__ import annotations

from typing import Any

from agentos_common.canonical import canonical_digest
from workflows import executor_config
from workflows.templating import references, render, root_key


def params_digest(*, node_id: str, action: str, params: Any) -> str:
    """Return the SHA-256 of one action's resolved parameters."""
    return canonical_digest({"node": node_id, "action": action, "params": params})


def guard_entry(*, node: dict, position: int, params: Any, unresolved: list[str]) -> dict:
    """Return what a request shows and records about one guarded action."""
    try:
        risk = executor_config.registry().get(node["action"]).risk
    except Exception:  # an unknown action cannot run anyway; show it as high risk
        risk = "high"
    return {
        "node": node["id"],
        "position": position,
        "action": node["action"],
        "risk": risk,
        "params": params,
        "unresolved": unresolved,
        "digest": params_digest(node_id=node["id"], action=node["action"], params=params),
    }


def guards_after(nodes: list[dict], position: int, context: dict) -> list[dict]:
    """Return the action nodes a gate at `position` guards, resolved from the context.

    A gate guards the actions that follow it up to the next gate or input
    node (or the end of the plan).
    """
    return guards_from(nodes, position + 1, context)


def governing_gate(nodes: list[dict], position: int) -> int | None:
    """Return the index of the approval node that guards the action at `position`.

    That is the nearest node before it that is not an action, when it is an
    approval gate; None when an input node (or the start) comes first.
    """
    for index in range(position - 1, -1, -1):
        kind = nodes[index].get("type", "action")
        if kind == "action":
            continue
        return index if kind == "approval" else None
    return None


def guards_from(nodes: list[dict], start: int, context: dict) -> list[dict]:
    """Return the guard entries of the actions from `start` up to the next non-action."""
    guarded = []
    for index in range(start, len(nodes)):
        node = nodes[index]
        if node.get("type", "action") != "action":
            break
        missing: set[str] = set()
        params = render(node.get("params", {}), context, missing)
        guarded.append(
            guard_entry(node=node, position=index, params=params, unresolved=sorted(missing))
        )
    return guarded


def still_approved(
    guard: dict, node: dict, context: dict, *, answered: tuple[str, ...] = ()
) -> tuple[bool, str]:
    """Return whether a step's parameters still match what a person approved.

    A parameter built only from values that were unknown when the gate was
    decided (its `unresolved` references) or that a person gave later in
    answer to the step's own question (`answered`, e.g. the laptop model a
    portal asked for) was not part of what the approver saw: it may differ.
    Every other parameter must be exactly what the approver saw. Also return
    the digest of the parameters as they are now.
    """
    now = render(node.get("params", {}), context, set())
    digest = params_digest(node_id=node["id"], action=node["action"], params=now)
    seen = guard.get("params") or {}
    free = {root_key(ref) for ref in (*guard.get("unresolved", []), *answered)}
    templates = node.get("params", {})
    if set(now) != set(seen):
        return False, digest
    for name, template in templates.items():
        roots = {root_key(ref) for ref in references(template)}
        if roots and roots <= free:
            continue
        if now.get(name) != seen.get(name):
            return False, digest
    return True, digest


def guards_digest(guards: list[dict]) -> str:
    """Return the digest of everything a request guards ("" when it guards nothing)."""
    if not guards:
        return ""
    return canonical_digest([[g["node"], g["position"], g["digest"]] for g in guards])
