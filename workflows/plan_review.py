"""Plan review: a person approves, edits or rejects a plan before it runs.

A run created with ``review_plan=True`` (a plan from the planner) in the
assisted or interactive mode pauses before its first node, and so does a run
of any bare plan (no stored workflow) with an action that is not low-risk,
in every mode, autonomous included (`needs_person`). The request
shows the plan as a readable table (its description) and as JSON (its
state), offers every action parameter as an editable field, and is bound
to the plan's SHA-256 digest: the approval applies to that exact plan, and
edits are re-validated before the run goes on with the edited plan.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic_core import PydanticUndefined

from agentos_common.canonical import canonical_digest
from executors.registry import Registry, UnknownAction
from workflows import graph
from workflows.plans import PlanError, PlanInvalid

__all__ = [
    "PENDING",
    "apply_edits",
    "needs_person",
    "plan_digest",
    "review_fields",
    "review_rows",
    "review_table",
]

PENDING = "pending"
_KEEP = ("type", "enum", "minimum", "maximum", "minLength", "maxLength", "description")


def plan_digest(plan: dict[str, Any]) -> str:
    """Return the SHA-256 of the plan's canonical JSON."""
    return canonical_digest(plan)


def needs_person(plan: dict[str, Any], registry: Registry) -> bool:
    """Return whether a bare plan must be reviewed before it runs, in any mode.

    Only a plan whose every action is low-risk may run unreviewed; an action
    the registry does not know counts as risky.
    """
    for node in graph.walk(plan.get("nodes", [])):
        if node.get("type", "action") != "action":
            continue
        try:
            if registry.get(node.get("action", "")).risk != "low":
                return True
        except UnknownAction:
            return True
    return False


def review_rows(plan: dict[str, Any], registry: Registry) -> list[dict[str, Any]]:
    """Return one row per node: position, id, kind, action, risk, what."""
    rows = []
    for index, node in enumerate(graph.walk(plan.get("nodes", [])), start=1):
        kind = node.get("type", "action")
        row = {
            "step": index,
            "id": node["id"],
            "type": kind,
            "action": node.get("action", ""),
            "risk": "",
            "params": node.get("params", {}),
            "title": node.get("title") or "",
        }
        if kind == "action":
            try:
                row["risk"] = registry.get(node["action"]).risk
            except UnknownAction:
                row["risk"] = "unknown"
        elif kind == "workflow":  # a child run: which workflow, which version, what inputs
            row["action"] = f"workflow:{node.get('workflow')}@{node.get('version') or 'current'}"
            row["params"] = node.get("inputs") or {}
        rows.append(row)
    return rows


def review_table(plan: dict[str, Any], registry: Registry) -> str:
    """Return the plan as a plain-text table a reviewer can read."""
    lines = ["#  | node | what | risk | parameters", "-- | ---- | ---- | ---- | ----------"]
    for row in review_rows(plan, registry):
        what = (
            row["action"]
            if row["type"] in ("action", "workflow")
            else f"{row['type']}: {row['title']}"
        )
        params = ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in row["params"].items()
        )
        lines.append(f"{row['step']} | {row['id']} | {what} | {row['risk'] or '-'} | {params}")
    return "\n".join(lines)


def _field_schema(prop: dict[str, Any], current: Any) -> dict[str, Any]:
    if "anyOf" in prop:
        options = [s for s in prop["anyOf"] if s.get("type") != "null"]
        if len(options) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **options[0]}
    if isinstance(current, str) and "{{" in current:
        return {"type": "string"}  # a reference: edited as text, checked at run time
    schema = {k: v for k, v in prop.items() if k in _KEEP}
    if "items" in prop and "$ref" not in json.dumps(prop["items"]):
        schema["items"] = prop["items"]
    if schema.get("type") == "array" and "items" not in schema:
        schema.pop("type")
    return schema


def review_fields(plan: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """Return a JSON Schema with one optional field per action parameter.

    Fields are named ``<node id>.<parameter>`` and default to the plan's
    value (or the action's default); submitting them unchanged edits nothing.
    """
    properties: dict[str, Any] = {}
    for node in graph.walk(plan.get("nodes", [])):
        if node.get("type", "action") != "action":
            continue
        try:
            params_schema = registry.get(node["action"]).Params.model_json_schema()
        except UnknownAction:
            continue
        given = node.get("params", {})
        for name, prop in params_schema.get("properties", {}).items():
            current = given.get(name, prop.get("default"))
            schema = _field_schema(prop, current)
            schema["title"] = f"{node['id']}: {prop.get('title') or name}"
            if current is not None:
                schema["default"] = current
            properties[f"{node['id']}.{name}"] = schema
    return {"type": "object", "properties": properties, "required": []}


def apply_edits(
    plan: dict[str, Any], values: dict[str, Any], registry: Registry
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (edited plan, {field: {"before", "after"}}) for values that differ."""
    edited = copy.deepcopy(plan)
    nodes = {node["id"]: node for node in graph.walk(edited.get("nodes", []))}
    changes: dict[str, Any] = {}
    errors = []
    for key, value in values.items():
        node_id, _, name = key.partition(".")
        node = nodes.get(node_id)
        if node is None or node.get("type", "action") != "action" or not name:
            errors.append(PlanError(node_id, key, "not a parameter of this plan"))
            continue
        params = node.setdefault("params", {})
        try:
            fields = registry.get(node["action"]).Params.model_fields
        except UnknownAction:
            errors.append(PlanError(node_id, key, f"unknown action {node['action']!r}"))
            continue
        if name not in fields:
            errors.append(PlanError(node_id, key, "unknown parameter"))
            continue
        default = fields[name].get_default(call_default_factory=True)
        default = None if default is PydanticUndefined else default
        before = params.get(name, default)
        if value == before:
            continue
        params[name] = value
        changes[key] = {"before": before, "after": value}
    if errors:
        raise PlanInvalid(errors)
    return edited, changes
