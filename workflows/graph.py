"""Plans as graphs: the control-flow node types, CEL conditions, and moves.

A plan is a list of nodes; a node's successor is the next node of its own
list unless it says `next: <id>` (an id of the same list) or `next: end`.
`branch` picks a successor with CEL conditions over the context, `fail`
ends the run with a message, an approval's `on_reject` routes a rejection.
A `next` (or a case, or an `on_reject`) that points back to an earlier node
needs `max_visits` on its target, so every cycle is bounded.

CEL (Common Expression Language, `common-expression-language`) is the only
thing evaluated anywhere: each condition is compiled at validation and
evaluated only by the engine, against the run's context.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cel

END = "end"
MAX_VISITS = 1000
MAX_EXPRESSION_CHARS = 2000
# The key a decision is readable under: `decisions.<node id>`.
DECISIONS = "decisions"
# The types whose successor is chosen by the node itself, not the list order.
ROUTING_TYPES = frozenset({"branch", "fail"})

# Operators and functions whose result is a boolean: an expression that uses
# none of them cannot be boolean unless it is a bare variable (checked at
# run time).
_BOOLEAN_FUNCTIONS = frozenset(
    {
        "_==_",
        "_!=_",
        "_<_",
        "_<=_",
        "_>_",
        "_>=_",
        "_&&_",
        "_||_",
        "!_",
        "@in",
        "@not_strictly_false",
        "has",
        "startsWith",
        "endsWith",
        "contains",
        "matches",
        "exists",
        "all",
        "exists_one",
    }
)
_COMPREHENSION = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


class ConditionError(ValueError):
    """A CEL condition that does not compile, or cannot be boolean."""


class ConditionMissing(LookupError):
    """A condition reads context keys the run does not have yet."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(", ".join(keys))
        self.keys = keys


@dataclass(frozen=True)
class Condition:
    """A compiled CEL condition and the context keys it reads."""

    text: str
    program: Any
    variables: tuple[str, ...]

    def evaluate(self, context: dict[str, Any]) -> bool:
        """Return the condition's value; ConditionMissing or ConditionError otherwise."""
        missing = [key for key in self.variables if key not in context]
        if missing:
            raise ConditionMissing(missing)
        try:
            value = self.program.execute({key: context[key] for key in self.variables})
        except Exception as exc:  # the library raises several kinds
            raise ConditionError(f"{self.text!r} failed: {exc}") from None
        if not isinstance(value, bool):
            raise ConditionError(f"{self.text!r} is {type(value).__name__}, not a boolean")
        return value


@functools.lru_cache(maxsize=512)
def compile_condition(text: str) -> Condition:
    """Compile a CEL condition; ConditionError names what is wrong."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ConditionError(f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        program = cel.compile(text)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConditionError(f"not a valid CEL expression: {first}") from None
    bound = set(_COMPREHENSION.findall(text))
    variables = tuple(v for v in program.variables() if v not in bound)
    functions = set(program.functions())
    if not functions & _BOOLEAN_FUNCTIONS:
        if not variables:
            value = program.execute({})
            if not isinstance(value, bool):
                raise ConditionError(f"must be boolean; it is always {value!r}")
        elif functions:
            raise ConditionError("must be boolean (a comparison, a test or a logical operator)")
    return Condition(text=text, program=program, variables=variables)


# --- moving along a list ------------------------------------------------------


def walk(nodes: list[dict]) -> Iterator[dict]:
    """Yield every node of a list and of the blocks inside it (ids are unique)."""
    for node in nodes:
        yield node
        if not isinstance(node, dict):
            continue
        if node.get("type") == "parallel":
            for branch in node.get("branches") or []:
                if isinstance(branch, dict):
                    yield from walk(branch.get("nodes") or [])
        elif node.get("type") == "map":
            yield from walk(node.get("nodes") or [])


def index_of(nodes: list[dict], node_id: str) -> int:
    """Return the index of `node_id` in a list, or len(nodes) for `end`."""
    if node_id == END:
        return len(nodes)
    for index, node in enumerate(nodes):
        if node.get("id") == node_id:
            return index
    raise KeyError(node_id)


def successor(nodes: list[dict], position: int) -> int:
    """Return the position after the node at `position` when it ends normally."""
    target = nodes[position].get("next")
    return index_of(nodes, target) if target else position + 1


def edges(nodes: list[dict], position: int) -> list[int]:
    """Return every position the node at `position` may hand over to."""
    node = nodes[position]
    kind = node.get("type", "action")
    if kind == "fail":
        return []
    if kind == "branch":
        targets = [case["next"] for case in node.get("cases", [])]
        out = [index_of(nodes, t) for t in targets]
        out.append(index_of(nodes, node["default"]) if node.get("default") else position + 1)
        return out
    out = [successor(nodes, position)]
    if kind == "approval" and node.get("on_reject"):
        out.append(index_of(nodes, node["on_reject"]))
    return out


def reject_target(nodes: list[dict], position: int) -> int | None:
    """Return where a rejection of the gate at `position` leads, or None (fail)."""
    node = nodes[position]
    target = node.get("on_reject") if node.get("type") == "approval" else None
    return index_of(nodes, target) if target else None


def decision_entry(*, decision: str, comment: str, decided_by: str, at: str) -> dict:
    """Return what `decisions.<node id>` holds for one decision of a gate."""
    return {"decision": decision, "comment": comment, "decided_by": decided_by, "at": at}
