"""Plan and workflow-spec validation: the safe router.

Every plan is checked here before anything runs: node shapes, unknown
actions, parameters against their pydantic models, policy (paths, hosts),
template syntax, outputs, and, in a stored workflow, that every reference
names a declared input or an output or field of an earlier node. All
problems are reported at once, each with its node and field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import jsonschema
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from agentos_common import limits
from agentos_common.nul import NUL_MESSAGE, first_nul
from executors.base import Policy
from executors.registry import Registry, UnknownAction
from workflows import graph, templating
from workflows.exceptions import PlanInvalid
from workflows.states import RunMode

NODE_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# A successor: a node id of the same list, or `end`.
TARGET = r"^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,63})$"
CONTEXT_KEY = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# A Slack channel id (C0123ABCD) or name (#approvals).
SLACK_CHANNEL = r"^#?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
MAX_PLAN_BYTES = 256 * 1024
MAX_NODES = 200
MAX_NODE_TIMEOUT_S = 900
# Red lines on parameters: a node's params as JSON, one string, nesting depth.
MAX_PARAMS_BYTES = 32 * 1024
MAX_STRING_CHARS = 8000
MAX_PARAM_DEPTH = 8
# References read the run's context and nothing else: these roots name
# things that are never in it, so a reference to them is refused outright.
RESERVED_ROOTS = frozenset(
    {
        "secrets",
        "secret",
        "settings",
        "env",
        "environ",
        "os",
        "request",
        "self",
        "config",
        "django",
        "globals",
        "builtins",
    }
)


@dataclass(frozen=True)
class PlanError:
    """One problem: which node, which field, what is wrong."""

    node: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(1, ge=1, le=10)
    backoff_s: float = Field(1.0, ge=0, le=300)


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=NODE_ID)
    title: str | None = Field(None, max_length=300)
    description: str = Field("", max_length=4000)
    # The successor when it is not the next node of the list (graph.END ends it).
    next: str | None = Field(None, pattern=TARGET)
    # Required on the target of a jump back: how often the node may be entered.
    max_visits: int | None = Field(None, ge=1, le=graph.MAX_VISITS)


class ActionNode(_Node):
    type: Literal["action"] = "action"
    action: str = Field(max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[Annotated[str, Field(pattern=CONTEXT_KEY)], str] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float | None = Field(None, gt=0, le=MAX_NODE_TIMEOUT_S)


class _AskNode(_Node):
    """What gates and input nodes share: assignment, due time, on_timeout."""

    assign_to: str | None = Field(None, max_length=150)
    due_in_s: int | None = Field(None, gt=0, le=90 * 24 * 3600)
    escalate_to: str | None = Field(None, max_length=150)
    on_timeout: Literal["reject", "approve", "escalate"] | None = None
    # Post this request to Slack too (docs/integrations.md); overrides the
    # workflow's slack_channel.
    slack_channel: str | None = Field(None, pattern=SLACK_CHANNEL)

    @field_validator("on_timeout")
    @classmethod
    def _timeout_policy(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and not info.data.get("due_in_s"):
            raise ValueError("on_timeout needs due_in_s")
        if value == "escalate" and not info.data.get("escalate_to"):
            raise ValueError("escalate needs escalate_to (a group)")
        return value


class ApprovalNode(_AskNode):
    type: Literal["approval"]
    title: str = Field(max_length=300)
    quorum: int = Field(1, ge=1, le=10)
    # Where a rejection leads; without it a rejection fails the run.
    on_reject: str | None = Field(None, pattern=TARGET)


class InputNode(_AskNode):
    type: Literal["input"]
    title: str = Field(max_length=300)
    fields: dict[Annotated[str, Field(pattern=CONTEXT_KEY)], dict[str, Any]] = Field(min_length=1)
    required: list[str] | None = None


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: str = Field(min_length=1, max_length=graph.MAX_EXPRESSION_CHARS)
    next: str = Field(pattern=TARGET)


class BranchNode(_Node):
    """Go to the first case whose CEL `when` holds, else `default` (or on)."""

    type: Literal["branch"]
    cases: list[Case] = Field(min_length=1, max_length=50)
    default: str | None = Field(None, pattern=TARGET)


class FailNode(_Node):
    """End the run as failed with `message` (references allowed)."""

    type: Literal["fail"]
    message: str = Field(min_length=1, max_length=2000)


class Lane(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodes: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_NODES)


class ParallelNode(_Node):
    """Run every branch at once; the node ends when all have ended."""

    type: Literal["parallel"]
    branches: list[Lane] = Field(min_length=1, max_length=20)


class MapNode(_Node):
    """Run `nodes` once per item of a context list, `max_concurrency` at a time."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["map"]
    items: str = Field(max_length=200)
    as_: str = Field(alias="as", pattern=CONTEXT_KEY)
    max_concurrency: int = Field(4, ge=1, le=50)
    results: str | None = Field(None, pattern=CONTEXT_KEY)
    nodes: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_NODES)


class WorkflowNode(_Node):
    """Start a child run of a stored workflow; go on when it has ended."""

    type: Literal["workflow"]
    workflow: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    # Pinned when the parent run starts (the workflow's version then) if not given.
    version: int | None = Field(None, ge=1)
    inputs: dict[Annotated[str, Field(pattern=CONTEXT_KEY)], Any] = Field(default_factory=dict)
    # parent context key: child context key, read when the child succeeded.
    outputs: dict[Annotated[str, Field(pattern=CONTEXT_KEY)], str] = Field(default_factory=dict)


# How deep children may nest: a run's child's child ... at most this many levels.
MAX_CHILD_DEPTH = 5

NODE_MODELS: dict[str, type[_Node]] = {
    "action": ActionNode,
    "approval": ApprovalNode,
    "input": InputNode,
    "branch": BranchNode,
    "fail": FailNode,
    "parallel": ParallelNode,
    "map": MapNode,
    "workflow": WorkflowNode,
}


class WorkflowSpec(BaseModel):
    """A stored workflow: what the admin and the API accept."""

    model_config = ConfigDict(extra="forbid")
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    mode: RunMode = RunMode.ASSISTED
    allow_self_approval: bool = False
    # Post this workflow's requests to Slack too (docs/integrations.md).
    slack_channel: str | None = Field(None, pattern=SLACK_CHANNEL)
    inputs: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    plan: dict[str, Any]


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _pydantic_errors(node: str, prefix: str, exc: ValidationError) -> list[PlanError]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        field = _loc((prefix, *err["loc"])) if prefix else _loc(err["loc"])
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        errors.append(PlanError(node, field, message))
    return errors


def input_schema_errors(inputs: Any) -> list[PlanError]:
    """Check an inputs (or fields) JSON Schema."""
    if not isinstance(inputs, dict) or inputs.get("type", "object") != "object":
        return [PlanError("", "inputs", "must be a JSON Schema of type object")]
    try:
        jsonschema.Draft202012Validator.check_schema(inputs)
    except jsonschema.SchemaError as exc:
        return [
            PlanError("", "inputs." + _loc(tuple(exc.path)) if exc.path else "inputs", exc.message)
        ]
    return []


def node_fields_schema(node: InputNode) -> dict[str, Any]:
    """Return the JSON Schema object an input node asks for."""
    required = node.required if node.required is not None else list(node.fields)
    return {"type": "object", "properties": node.fields, "required": required}


def validate_plan(
    plan: Any,
    *,
    registry: Registry,
    policy: Policy,
    inputs_schema: dict[str, Any] | None = None,
    stored: bool = False,
    slug: str | None = None,
) -> list[PlanError]:
    """Return every problem with a plan; an empty list means it may run.

    With `stored=True` (a workflow's plan), every reference must name a
    declared input or an output or field of an earlier node.
    """
    if not isinstance(plan, dict):
        return [PlanError("", "plan", "must be an object with a list of nodes")]
    if limits.value_depth(plan) > limits.MAX_DEPTH:
        return [PlanError("", "plan", str(limits.TooDeep()))]
    if len(json.dumps(plan, default=str)) > MAX_PLAN_BYTES:
        return [PlanError("", "plan", f"is larger than {MAX_PLAN_BYTES // 1024} KiB")]
    nul = first_nul(plan)
    if nul is not None:
        return [PlanError("", f"plan.{nul}", NUL_MESSAGE)]
    errors = [PlanError("", f"plan.{key}", "unknown field") for key in plan if key != "nodes"]
    raw_nodes = plan.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        return errors + [PlanError("", "nodes", "must be a non-empty list of nodes")]
    if len(raw_nodes) > MAX_NODES:
        return errors + [PlanError("", "nodes", f"at most {MAX_NODES} nodes")]

    available = set((inputs_schema or {}).get("properties", {}))
    check = _ListCheck(registry=registry, policy=policy, stored=stored, seen=set(), slug=slug)
    return errors + check.nodes(raw_nodes, available)


@dataclass
class _ListCheck:
    """Validate one list of nodes, and the lists inside its blocks."""

    registry: Registry
    policy: Policy
    stored: bool
    seen: set[str]
    # The slug of the workflow whose plan this is: a child naming it is recursion.
    slug: str | None = None

    def nodes(self, raw_nodes: list[Any], available: set[str]) -> list[PlanError]:
        """Return the problems of a list; `available` grows with what it writes."""
        errors: list[PlanError] = []
        parsed: list[_Node] = []
        for index, raw in enumerate(raw_nodes):
            label = f"#{index + 1}"
            if not isinstance(raw, dict):
                errors.append(PlanError(label, "", "a node must be an object"))
                continue
            if isinstance(raw.get("id"), str) and raw["id"]:
                label = raw["id"]
            kind = raw.get("type", "action")
            model = NODE_MODELS.get(kind) if isinstance(kind, str) else None
            if model is None:
                errors.append(PlanError(label, "type", "must be one of " + ", ".join(NODE_MODELS)))
                continue
            try:
                node = model.model_validate(raw)
            except ValidationError as exc:
                errors.extend(_pydantic_errors(label, "", exc))
                continue
            errors.extend(self.node(node, available))
            parsed.append(node)
        if len(parsed) == len(raw_nodes):
            errors.extend(_flow_errors(parsed))
        return errors

    def node(self, node: _Node, available: set[str]) -> list[PlanError]:
        errors: list[PlanError] = []
        if node.id in self.seen:
            errors.append(PlanError(node.id, "id", f"duplicate node id {node.id!r}"))
        if node.id == graph.END:
            errors.append(PlanError(node.id, "id", f"{graph.END!r} names the end of a list"))
        self.seen.add(node.id)
        errors.extend(_template_errors(node))
        if self.stored:
            errors.extend(_reference_errors(node, available))
        if isinstance(node, ActionNode):
            size_errors = _size_errors(node)
            errors.extend(size_errors)
            if not size_errors:
                errors.extend(_action_errors(node, self.registry, self.policy))
            available.update(node.outputs)
        elif isinstance(node, InputNode):
            errors.extend(_input_node_errors(node))
            available.update(node.fields)
        elif isinstance(node, BranchNode):
            errors.extend(_condition_errors(node, available if self.stored else None))
        elif isinstance(node, WorkflowNode):
            errors.extend(_child_errors(node, self.slug))
            available.update(node.outputs)
        elif isinstance(node, ParallelNode | MapNode):
            # Blocks nest: a block's lists are checked as plans of their own,
            # at any depth (paths like `hires/setup/0/hr`).
            errors.extend(self.block(node, available))
        return errors

    def block(self, node: ParallelNode | MapNode, available: set[str]) -> list[PlanError]:
        """Check a block's lists as plans of their own; record what it writes."""
        errors: list[PlanError] = []
        if isinstance(node, MapNode):
            ref = templating.is_exact_reference(node.items)
            if not ref:
                errors.append(
                    PlanError(node.id, "items", "must be one reference, like {{ employees }}")
                )
            elif self.stored and templating.root_key(ref) not in available:
                errors.append(
                    PlanError(node.id, "items", f"{{{{ {ref} }}}} is not a declared key")
                )
            inner = set(available) | {node.as_}
            found = self.nodes(node.nodes, inner)
            errors.extend(_inside(node.id, found))
            if node.results:
                available.add(node.results)
            return errors
        writers: dict[str, int] = {}
        for index, branch in enumerate(node.branches):
            inner = set(available)
            found = self.nodes(branch.nodes, inner)
            errors.extend(_inside(f"{node.id}/{index}", found))
            for key in sorted(inner - available):
                if key in writers:
                    errors.append(
                        PlanError(
                            node.id,
                            f"branches.{index}",
                            f"writes {key!r}, as branch {writers[key]} does: two branches "
                            "may not write the same context key",
                        )
                    )
                writers.setdefault(key, index)
        available.update(writers)
        return errors


def _inside(prefix: str, errors: list[PlanError]) -> list[PlanError]:
    return [
        PlanError(f"{prefix}/{e.node}" if e.node else prefix, e.field, e.message) for e in errors
    ]


def _condition_errors(node: BranchNode, available: set[str] | None) -> list[PlanError]:
    """Compile every case's condition; in a stored workflow, check what it reads."""
    errors = []
    for index, case in enumerate(node.cases):
        field = f"cases.{index}.when"
        try:
            condition = graph.compile_condition(case.when)
        except graph.ConditionError as exc:
            errors.append(PlanError(node.id, field, str(exc)))
            continue
        for name in condition.variables:
            if name in RESERVED_ROOTS or name.startswith("_"):
                errors.append(PlanError(node.id, field, f"{name} does not name a context value"))
            elif available is not None and name not in available and name != graph.DECISIONS:
                errors.append(
                    PlanError(
                        node.id,
                        field,
                        f"reads {name}, which is neither a declared input nor an output or "
                        "field of an earlier node",
                    )
                )
    return errors


def _flow_errors(nodes: list[_Node]) -> list[PlanError]:
    """Check the list's successors: known targets, bounded cycles, reachability."""
    ids = [node.id for node in nodes]
    errors: list[PlanError] = []
    targets: list[tuple[_Node, str, str]] = []
    for node in nodes:
        if node.next is not None:
            targets.append((node, "next", node.next))
        if isinstance(node, ApprovalNode) and node.on_reject:
            targets.append((node, "on_reject", node.on_reject))
        if isinstance(node, BranchNode):
            targets += [(node, f"cases.{i}.next", c.next) for i, c in enumerate(node.cases)]
            if node.default:
                targets.append((node, "default", node.default))
        if isinstance(node, FailNode) and node.next is not None:
            errors.append(PlanError(node.id, "next", "a fail node ends the run; it has no next"))
    bad = False
    for node, field, target in targets:
        if target == graph.END:
            continue
        if target not in ids:
            bad = True
            errors.append(
                PlanError(node.id, field, f"{target!r} is not a node of this list (or end)")
            )
            continue
        if target == node.id or ids.index(target) < ids.index(node.id):
            if nodes[ids.index(target)].max_visits is None:
                errors.append(
                    PlanError(
                        node.id,
                        field,
                        f"goes back to {target!r}, an unbounded cycle: give {target!r} max_visits",
                    )
                )
    if bad:
        return errors
    plain = [node.model_dump(exclude_none=True) for node in nodes]
    seen = {0}
    todo = [0]
    while todo:
        for nxt in graph.edges(plain, todo.pop()):
            if nxt < len(plain) and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    for index, node in enumerate(nodes):
        if index not in seen:
            errors.append(PlanError(node.id, "id", "unreachable: no path leads to this node"))
    return errors


def _template_texts(node: _Node) -> dict[str, Any]:
    texts: dict[str, Any] = {"title": node.title, "description": node.description}
    if isinstance(node, ActionNode):
        texts.update({f"params.{k}": v for k, v in node.params.items()})
    elif isinstance(node, FailNode):
        texts["message"] = node.message
    elif isinstance(node, WorkflowNode):
        texts.update({f"inputs.{k}": v for k, v in node.inputs.items()})
    return texts


def _template_errors(node: _Node) -> list[PlanError]:
    errors = [
        PlanError(node.id, field, message)
        for field, value in _template_texts(node).items()
        for message in templating.check_syntax(value)
    ]
    for field, value in _template_texts(node).items():
        for ref in templating.references(value):
            parts = ref.split(".")
            if parts[0] == "context":
                parts = parts[1:]
            if not parts or parts[0] in RESERVED_ROOTS or any(p.startswith("_") for p in parts):
                errors.append(
                    PlanError(
                        node.id,
                        field,
                        f"{{{{ {ref} }}}} does not name a context value; references read the "
                        "run's context only (secrets are named by actions, never referenced)",
                    )
                )
    return errors


def _child_spec(slug: str, version: int | None) -> dict | None:
    """Return a stored workflow's spec (a version of it, or its current one), or None."""
    from workflows.models import Workflow, WorkflowVersion

    if version is None:
        workflow = Workflow.objects.filter(slug=slug).only("spec").first()
        return workflow.spec if workflow is not None else None
    row = WorkflowVersion.objects.filter(workflow__slug=slug, version=version).first()
    return row.spec if row is not None else None


def child_nodes(spec: dict) -> list[dict]:
    """Return the `type: workflow` nodes of a spec's plan, inside blocks too."""
    nodes = (spec.get("plan") or {}).get("nodes") or []
    return [n for n in graph.walk(nodes) if isinstance(n, dict) and n.get("type") == "workflow"]


def spec_writes(spec: dict) -> set[str]:
    """Return the context keys a stored workflow's run may hold at its end.

    Its declared inputs, and every node's outputs, input fields and map
    results: what a parent's `outputs` may take from it.
    """
    writes = set((spec.get("inputs") or {}).get("properties") or {})
    for child in graph.walk((spec.get("plan") or {}).get("nodes") or []):
        if not isinstance(child, dict):
            continue
        writes.update(child.get("fields") or {})
        writes.update(child.get("outputs") or {})
        if child.get("results"):
            writes.add(child["results"])
    return writes


def _child_errors(node: WorkflowNode, root: str | None) -> list[PlanError]:
    """Check a child: it exists, its inputs and outputs fit, no recursion, depth <= 5."""
    spec = _child_spec(node.workflow, node.version)
    if spec is None:
        which = f"version {node.version} of " if node.version else ""
        field = "version" if node.version and _child_spec(node.workflow, None) else "workflow"
        return [PlanError(node.id, field, f"no {which}stored workflow {node.workflow!r}")]
    errors: list[PlanError] = []
    inputs = spec.get("inputs") or {}
    declared = inputs.get("properties") or {}
    for key in node.inputs:
        if key not in declared:
            errors.append(
                PlanError(node.id, f"inputs.{key}", f"{node.workflow} has no input {key!r}")
            )
    for key in inputs.get("required") or []:
        if key not in node.inputs and "default" not in (declared.get(key) or {}):
            errors.append(
                PlanError(node.id, "inputs", f"{node.workflow} requires the input {key!r}")
            )
    writes = spec_writes(spec)
    for key, child_key in node.outputs.items():
        if child_key not in writes:
            errors.append(
                PlanError(
                    node.id,
                    f"outputs.{key}",
                    f"{node.workflow} never writes {child_key!r} (not an input, output or field)",
                )
            )
    problem = _chain_problem(node.workflow, spec, [root] if root else [], depth=1)
    if problem:
        errors.append(PlanError(node.id, "workflow", problem))
    return errors


def _chain_problem(slug: str, spec: dict, chain: list[str], *, depth: int) -> str:
    """Return why a chain of children is refused (recursion, too deep), or "".

    `chain` is the workflows above `slug`; `depth` is `slug`'s level (1 for
    a child of the plan being checked).
    """
    chain = [*chain, slug]
    if slug in chain[:-1]:
        return "recursion: " + " → ".join(chain)
    if depth > MAX_CHILD_DEPTH:
        return f"children nest deeper than {MAX_CHILD_DEPTH} levels: " + " → ".join(chain)
    for child in child_nodes(spec):
        inner = _child_spec(str(child.get("workflow")), child.get("version"))
        if inner is None:
            continue  # its own validation reported it when it was saved
        problem = _chain_problem(str(child.get("workflow")), inner, chain, depth=depth + 1)
        if problem:
            return problem
    return ""


def _size_errors(node: ActionNode) -> list[PlanError]:
    """Return problems with oversized or too deeply nested parameters."""
    if len(json.dumps(node.params, default=str)) > MAX_PARAMS_BYTES:
        return [PlanError(node.id, "params", f"larger than {MAX_PARAMS_BYTES // 1024} KiB")]
    errors: list[PlanError] = []

    def walk(value: Any, where: str, depth: int) -> None:
        if depth > MAX_PARAM_DEPTH:
            errors.append(PlanError(node.id, where, f"nested deeper than {MAX_PARAM_DEPTH}"))
        elif isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            errors.append(PlanError(node.id, where, f"longer than {MAX_STRING_CHARS} characters"))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}", depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}.{index}", depth + 1)

    for name, value in node.params.items():
        walk(value, f"params.{name}", 1)
    return errors


def _reference_errors(node: _Node, available: set[str]) -> list[PlanError]:
    errors = []
    for field, value in _template_texts(node).items():
        for ref in templating.references(value):
            if templating.root_key(ref) not in available | {graph.DECISIONS}:
                errors.append(
                    PlanError(
                        node.id,
                        field,
                        f"refers to {{{{ {ref} }}}}, which is neither a declared input nor an "
                        "output or field of an earlier node",
                    )
                )
    return errors


def _action_errors(node: ActionNode, registry: Registry, policy: Policy) -> list[PlanError]:
    try:
        action = registry.get(node.action)
    except UnknownAction:
        return [
            PlanError(
                node.id,
                "action",
                f"unknown action {node.action!r}; see GET /api/v1/actions for the registry",
            )
        ]
    errors: list[PlanError] = []
    fields = action.Params.model_fields
    templated = {k for k, v in node.params.items() if any(True for _ in templating.references(v))}
    for name in node.params:
        if name not in fields:
            errors.append(PlanError(node.id, f"params.{name}", "unknown parameter"))
    literal = {k: v for k, v in node.params.items() if k not in templated and k in fields}
    try:
        # Strict, as in the child: "yes" is not a bool nor "5" an int.
        action.Params.model_validate_json(json.dumps(literal), strict=True)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            if err["loc"] and err["loc"][0] in templated:
                continue  # checked at run time, once the reference is resolved
            errors.append(PlanError(node.id, _loc(("params", *err["loc"])), err["msg"]))
    for field, message in action.policy_errors(literal, policy):
        errors.append(PlanError(node.id, f"params.{field}", message))
    for key, out_field in node.outputs.items():
        if out_field not in action.Output.model_fields:
            errors.append(
                PlanError(
                    node.id,
                    f"outputs.{key}",
                    f"{node.action} has no output {out_field!r}; it has "
                    + ", ".join(sorted(action.Output.model_fields)),
                )
            )
    return errors


def _input_node_errors(node: InputNode) -> list[PlanError]:
    errors = []
    for name in node.required or []:
        if name not in node.fields:
            errors.append(PlanError(node.id, "required", f"{name!r} is not one of the fields"))
    try:
        jsonschema.Draft202012Validator.check_schema(node_fields_schema(node))
    except jsonschema.SchemaError as exc:
        errors.append(PlanError(node.id, "fields." + _loc(tuple(exc.path)[1:]), exc.message))
    return errors


class _SpecRefused(yaml.YAMLError):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message, self.problem_mark = message, mark


class _SpecLoader(yaml.SafeLoader):
    """YAML's safe loader without anchors or aliases, nesting at most MAX_DEPTH.

    Aliases let a few hundred characters expand to billions of nodes
    ("billion laughs"), and the composer recurses once per level: both are
    refused while composing, before anything is built. A spec never needs
    them (no merge keys either: write the values out).
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _SpecRefused("aliases (*name) are not allowed", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _SpecRefused("anchors (&name) are not allowed", event.start_mark)
        self._depth += 1
        try:
            if self._depth > limits.MAX_DEPTH:
                raise _SpecRefused(
                    f"nested deeper than {limits.MAX_DEPTH} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_spec_text(text: str) -> Any:
    """Parse a spec written as YAML or JSON; PlanInvalid on a syntax error.

    Anchors, aliases and nesting deeper than MAX_DEPTH are refused too.
    """
    try:
        return yaml.load(text, Loader=_SpecLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.message if isinstance(exc, _SpecRefused) else "not valid YAML or JSON"
        raise PlanInvalid([PlanError("", "spec", f"{problem}{where}")]) from None


def validate_spec(raw: Any, *, registry: Registry, policy: Policy) -> WorkflowSpec:
    """Return the validated spec, or raise PlanInvalid with every problem."""
    if not isinstance(raw, dict):
        raise PlanInvalid([PlanError("", "spec", "must be a mapping (slug, title, plan, ...)")])
    if limits.value_depth(raw) > limits.MAX_DEPTH:
        raise PlanInvalid([PlanError("", "spec", str(limits.TooDeep()))])
    nul = first_nul(raw)
    if nul is not None:
        raise PlanInvalid([PlanError("", nul, NUL_MESSAGE)])
    try:
        spec = WorkflowSpec.model_validate(raw)
    except ValidationError as exc:
        errors = _pydantic_errors("", "", exc)
        if isinstance(raw.get("plan"), dict):
            errors += validate_plan(
                raw["plan"],
                registry=registry,
                policy=policy,
                inputs_schema=raw.get("inputs") if isinstance(raw.get("inputs"), dict) else None,
                stored=True,
            )
        raise PlanInvalid(errors) from None
    errors = input_schema_errors(spec.inputs)
    errors += validate_plan(
        spec.plan,
        registry=registry,
        policy=policy,
        inputs_schema=spec.inputs,
        stored=True,
        slug=spec.slug,
    )
    if errors:
        raise PlanInvalid(errors)
    return spec
