"""Asking a person: a run's pause, and the fields and texts its requests carry.

Shared by the top of the plan (`decide`, `children`) and the lanes of a
block (`lanes`, `lane_nodes`): a missing value, a gate asked again and an
unknown outcome ask the same way wherever the node is.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, Unpack

from executors.base import Action
from workflows import executor_config, hooks
from workflows.engine import flow
from workflows.engine.base import append_event
from workflows.guards import guards_from
from workflows.models import Run, Step
from workflows.services import set_status
from workflows.states import RunStatus, StepStatus
from workflows.templating import is_exact_reference, render

# A node of a frozen plan, as the plan's JSON holds it.
Node = dict[str, Any]


class Ask(TypedDict):
    """A request's question and who it goes to: `pause(run, **ask)`, `lane_pause(..., **ask)`."""

    purpose: str
    kind: str
    title: str
    fields: dict[str, Any]
    description: NotRequired[str]
    # What the request keeps for the decision (its `state`), and the step it is about.
    state: NotRequired[dict[str, Any] | None]
    step: NotRequired[Step | None]
    assign_to: NotRequired[str | None]
    guards: NotRequired[list[dict[str, Any]] | None]
    options: NotRequired[dict[str, Any] | None]


def no_fields() -> dict[str, Any]:
    """Return the fields of a request that asks for no values (a new dict each time)."""
    return {"type": "object", "properties": {}}


def text(template: str, context: dict[str, Any]) -> str:
    return str(render(template, context, set()))


def ask_options(node: Node) -> dict[str, Any]:
    keys = ("quorum", "due_in_s", "on_timeout", "escalate_to", "slack_channel")
    return {key: node[key] for key in keys if node.get(key) is not None}


def missing_ask(
    run: Run,
    node: Node,
    action: type[Action] | None,
    missing: list[str],
    *,
    label: str,
    to: str = "continue",
) -> Ask:
    """Ask for the values a node's references found missing (in `missing`'s order)."""
    return Ask(
        purpose="missing",
        kind="input",
        title=f"{label}: a value is missing",
        description="Supply " + ", ".join(missing) + f" to {to}.",
        fields=missing_fields(run, node, action, missing),
    )


def missing_fields(
    run: Run, node: Node, action: type[Action] | None, missing: list[str]
) -> dict[str, Any]:
    """Type each missing reference from the inputs schema or the parameter schema."""
    inputs = (run.inputs_schema or {}).get("properties", {})
    param_schema = (
        action.Params.model_json_schema().get("properties", {}) if action is not None else {}
    )
    by_reference = {}
    for name, value in node.get("params", {}).items():
        ref = is_exact_reference(value)
        if ref:
            by_reference[ref] = name
    properties = {}
    for ref in missing:
        if ref in inputs:
            schema = dict(inputs[ref])
        elif ref in by_reference and by_reference[ref] in param_schema:
            schema = plain_schema(param_schema[by_reference[ref]])
        else:
            schema = {"type": "string"}
        schema.setdefault("title", ref.replace("_", " ").replace(".", " ").capitalize())
        properties[ref] = schema
    return {"type": "object", "properties": properties, "required": list(properties)}


def plain_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's nullable wrapper and keep what a form can show."""
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
    keep = (
        "type",
        "enum",
        "format",
        "title",
        "description",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "items",
    )
    return {k: v for k, v in schema.items() if k in keep} or {"type": "string"}


def request_open(
    run: Run, ask: Ask, *, event: str, node_id: str, position: int, node_path: str = ""
) -> Any:
    """Open a request for a node of the run, with its event (`run.paused`, `node.waiting`).

    `node_path` names a node inside a block (its event says it too).
    """
    title, step, fields = ask["title"], ask.get("step"), ask["fields"]
    request = hooks.open_request(
        run=run,
        step=step,
        node_id=node_id,
        **({"node_path": node_path} if node_path else {}),
        position=position,
        kind=ask["kind"],
        purpose=ask["purpose"],
        title=title[:300],
        description=ask.get("description", ""),
        fields=fields,
        state=ask.get("state") or {},
        assign_to=ask.get("assign_to"),
        guards=ask.get("guards") or [],
        options=ask.get("options") or {},
    )
    append_event(
        run,
        type=event,
        data={
            "request": request.pk,
            "kind": ask["kind"],
            "purpose": ask["purpose"],
            "node": node_id,
            **({"node_path": node_path} if node_path else {}),
            "title": title,
            "fields": fields,
            "step": step.pk if step else None,
            "digest": getattr(request, "digest", ""),
        },
    )
    return request


def pause(run: Run, **ask: Unpack[Ask]) -> None:
    """Pause the run at its current node on a new request."""
    set_status(run, RunStatus.WAITING)
    request_open(run, ask, event="run.paused", node_id=run.current_node, position=run.position)


def digest_mismatch(
    run: Run, node: Node, approved: dict[str, Any], current: str, *, path: str = ""
) -> None:
    """Record that what would run differs from what a person approved (`path`: in a lane)."""
    append_event(
        run,
        type="approval.digest_mismatch",
        data={
            "node": node["id"],
            **({"node_path": path} if path else {}),
            "approved": approved["digest"],
            "current": current,
        },
    )


def ask_gate_again(run: Run, gate: Node, node: Node, *, reason: str) -> None:
    """Ask a gate again for a step that no approval of it in this run covers.

    A run that starts past its gate (a fork from a point after the parent's
    approval) has no approval of its own: what a person approved in the
    parent, for the parent's parameters, is not an approval here; nor is an
    approval of parameters that have changed since. The gate's question goes
    out again, to the gate's group with its quorum and timing, guarding this
    step and the rest of the gate's steps with this run's parameters;
    four-eyes holds against this run's requester.
    """
    guards = guards_from(run.nodes, run.position, flow.scope(run))
    append_event(
        run,
        type="approval.asked_again",
        data={
            "gate": gate["id"],
            "node": node["id"],
            "forked_from": run.parent_id if run.forked_at_seq is not None else None,
            "reason": reason,
        },
    )
    forked = (
        f" (this run was forked from run {run.parent_id})"
        if run.parent_id and run.forked_at_seq is not None
        else ""
    )
    what = node.get("action") or f"workflow {node.get('workflow')}"
    pause(
        run,
        purpose="gate_again",
        kind="approval",
        title=text(gate["title"], flow.scope(run)),
        description=(
            f"Asked again before {node['id']} ({what}): {reason}"
            f"{forked}. Review the parameters below."
            + (f"\n\n{gate['description']}" if gate.get("description") else "")
        ),
        fields=no_fields(),
        state={"gate": gate["id"]},
        assign_to=gate.get("assign_to"),
        guards=guards,
        options=ask_options(gate),
    )


def step_unknown(run: Run, step: Step, where: dict[str, Any]) -> None:
    """Mark an interrupted attempt's outcome unknown (once); `where` names its node."""
    if step.status == StepStatus.UNKNOWN:
        return
    step.status = StepStatus.UNKNOWN
    step.error = step.error or "the worker stopped while this step ran"
    step.save()
    append_event(
        run,
        type="step.outcome_unknown",
        data={"step": step.pk, **where, "attempt": step.attempt, "error": step.error},
    )


def unknown_ask(node: Node, step: Step, name: str, state: dict[str, Any]) -> Ask:
    """Ask whether a non-idempotent attempt happened (`name`: the node's path or id)."""
    action = executor_config.registry().get(node["action"])
    properties = action.Output.model_json_schema().get("properties", {})
    outputs = {
        field: plain_schema(properties.get(field, {"type": "string"}))
        for field in node.get("outputs", {}).values()
    }
    return Ask(
        purpose="unknown_outcome",
        kind="unknown_outcome",
        title=f"Did {node['action']} ({name}) happen?",
        description=f"{node['action']} is not idempotent and its attempt {step.attempt} "
        "was interrupted. Check the system, then retry the step, mark it done "
        "(giving its outputs) or fail the run.",
        fields={"type": "object", "properties": outputs, "required": []},
        step=step,
        state=state,
    )
