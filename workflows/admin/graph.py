"""Draw a plan as HTML/CSS boxes with each node's live state.

No script and no network: the server renders the plan's format (INTERFACES.md
"Plans as graphs") as nested lists that CSS lays out as a chain. A linear
plan is a chain of boxes; `branch` lists its cases, `parallel` its branches
side by side, `map` its body with the items it runs over, `workflow` the
child workflow, `fail` its message. Jumps (`next`, `on_reject`) are labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from workflows.display import compact_json, titled

STATE_LABELS = {
    "done": "done",
    "running": "running",
    "waiting": "waiting for a person",
    "failed": "failed",
    "rejected": "rejected",
    "current": "current",
    "cancelled": "cancelled",
    "pending": "not reached",
    "skipped": "skipped",
}
KIND_LABELS = {
    "action": "action",
    "approval": "approval",
    "input": "input",
    "branch": "branch",
    "parallel": "parallel",
    "map": "map",
    "workflow": "child workflow",
    "fail": "fail",
}
MAX_NODES = 300


@dataclass
class _View:
    states: dict[str, str]
    context: dict[str, Any]
    budget: int


STEP_STATES = {
    "succeeded": "done",
    "running": "running",
    "needs_input": "waiting",
    "unknown": "waiting",
    "interrupted": "running",
}


def _what(node: dict[str, Any], context: dict[str, Any]) -> str:
    kind = node.get("type", "action")
    if kind == "action":
        title = f" — {titled(node['title'], context)}" if node.get("title") else ""
        return f"{node.get('action', '')}{title}"
    if kind in ("approval", "input"):
        who = f" — {node['assign_to']}" if node.get("assign_to") else ""
        return f"{titled(node.get('title', ''), context)}{who}"
    if kind == "workflow":
        version = f" v{node['version']}" if node.get("version") else ""
        return f"{node.get('workflow', '')}{version}"
    if kind == "fail":
        return titled(node.get("message", ""), context)
    if kind == "map":
        limit = node.get("max_concurrency")
        at_most = f", at most {limit} at a time" if limit else ""
        return f"for each {node.get('as', 'item')} in {node.get('items', '')}{at_most}"
    return ""


def _jumps(node: dict[str, Any]) -> SafeString:
    parts = []
    if node.get("next"):
        parts.append(format_html('<span class="agentos-jump">then → {}</span>', node["next"]))
    if node.get("on_reject"):
        parts.append(
            format_html('<span class="agentos-jump">if rejected → {}</span>', node["on_reject"])
        )
    if node.get("results"):
        parts.append(
            format_html('<span class="agentos-jump">results → {}</span>', node["results"])
        )
    return mark_safe(" ".join(parts))


def _inner(node: dict[str, Any], view: _View) -> SafeString:
    kind = node.get("type", "action")
    if kind == "branch":
        cases = format_html_join(
            "",
            "<li><code>{}</code> → {}</li>",
            (
                (case.get("when", ""), case.get("next", ""))
                for case in node.get("cases") or []
                if isinstance(case, dict)
            ),
        )
        default = node.get("default")
        otherwise = format_html("<li>otherwise → {}</li>", default) if default else ""
        return format_html('<ul class="agentos-cases">{}{}</ul>', cases, otherwise)
    if kind == "parallel":
        branches = [b for b in node.get("branches") or [] if isinstance(b, dict)]
        return format_html(
            '<div class="agentos-branches">{}</div>',
            format_html_join(
                "",
                '<div class="agentos-branch"><span class="agentos-branch-label">branch {}'
                "</span>{}</div>",
                (
                    (index + 1, _chain(branch.get("nodes") or [], view))
                    for index, branch in enumerate(branches)
                ),
            ),
        )
    if kind == "map":
        return format_html(
            '<div class="agentos-branches"><div class="agentos-branch">{}</div></div>',
            _chain(node.get("nodes") or [], view),
        )
    if kind == "workflow" and (node.get("inputs") or node.get("outputs")):
        return format_html(
            "<small>inputs {} · outputs {}</small>",
            compact_json(node.get("inputs")) or "—",
            compact_json(node.get("outputs")) or "—",
        )
    return mark_safe("")


def _box(node: dict[str, Any], view: _View) -> SafeString:
    kind = str(node.get("type", "action"))
    node_id = str(node.get("id", ""))
    state = view.states.get(node_id, "pending")
    return format_html(
        '<li class="agentos-node kind-{} state-{}" data-node="{}">'
        '<div class="agentos-node-head"><span class="agentos-kind">{}</span> '
        "<strong><code>{}</code></strong> "
        '<span class="agentos-node-state">{}</span></div>'
        '<div class="agentos-node-what">{}</div>{}{}</li>',
        kind,
        state,
        node_id,
        KIND_LABELS.get(kind, kind),
        node_id,
        STATE_LABELS.get(state, state),
        _what(node, view.context),
        _jumps(node),
        _inner(node, view),
    )


def _chain(nodes: list[Any], view: _View) -> SafeString:
    boxes = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        view.budget -= 1
        if view.budget < 0:
            boxes.append(mark_safe('<li class="agentos-node">… more nodes (see the plan)</li>'))
            break
        boxes.append(_box(node, view))
    if not boxes:
        return mark_safe('<p class="agentos-none">No nodes.</p>')
    return format_html('<ol class="agentos-chain">{}</ol>', mark_safe("".join(boxes)))


def render_graph(
    plan: dict[str, Any] | None,
    states: dict[str, str],
    context: dict[str, Any] | None = None,
) -> SafeString:
    """Return the plan's picture; `states` maps node ids to their state.

    Titles and messages show the run's context values (`context`, already
    redacted) where it has them.
    """
    nodes = (plan or {}).get("nodes") or []
    view = _View(states=states, context=context or {}, budget=MAX_NODES)
    return format_html(
        '<div class="agentos-graph" role="group" aria-label="The plan, node by node">{}</div>',
        _chain(nodes, view),
    )


def node_states(
    *,
    plan: dict[str, Any] | None,
    position: int,
    run_status: str,
    current_node: str,
    steps: list[Any],
    requests: list[Any],
) -> dict[str, str]:
    """Return each node id's state from the run's steps, requests and position.

    The latest step of a node says how its action went; a request says
    whether a person is awaited or decided; on a linear plan, nodes before
    the run's position are done.
    """
    states: dict[str, str] = {}
    top = [n for n in (plan or {}).get("nodes") or [] if isinstance(n, dict)]
    linear = all(n.get("type", "action") in ("action", "approval", "input") for n in top)
    if linear:
        for index, node in enumerate(top):
            if index < position or run_status == "succeeded":
                states[str(node.get("id", ""))] = "done"
    for step in steps:  # oldest first: the latest attempt wins
        states[step.node_id] = STEP_STATES.get(step.status, "failed")
    for item in requests:
        if item.status == "pending":
            states[item.node_id] = "waiting"
        elif item.status == "rejected":
            states[item.node_id] = "rejected"
        elif item.status == "approved" and states.get(item.node_id) in (None, "current"):
            states[item.node_id] = "done"
    if (
        current_node
        and current_node not in states
        and run_status
        not in (
            "succeeded",
            "failed",
            "cancelled",
        )
    ):
        states[current_node] = "current"
    if (
        current_node
        and run_status == "failed"
        and states.get(current_node)
        not in (
            "done",
            "rejected",
        )
    ):
        states[current_node] = "failed"
    return states


# When one node id stands for several node paths (a map's items, a lane's
# visits), its box shows the state that most needs a person's eye.
_STATE_WEIGHT = ("failed", "waiting", "running", "pending", "done", "skipped")


def states_by_node_id(path_states: dict[str, str]) -> dict[str, str]:
    """Fold the engine's node-path states (`setup/0/gate`, `orders[1]/ok`) onto node ids.

    The picture draws a node of a map body once for all its items: some items
    done and others not reached reads as running.
    """
    seen: dict[str, set[str]] = {}
    for path, state in path_states.items():
        node_id = path.rsplit("/", 1)[-1].split("[", 1)[0]
        seen.setdefault(node_id, set()).add(state)
    folded: dict[str, str] = {}
    for node_id, states in seen.items():
        if states >= {"done", "pending"} and not states & {"failed", "waiting"}:
            folded[node_id] = "running"
            continue
        folded[node_id] = min(
            states, key=lambda s: _STATE_WEIGHT.index(s) if s in _STATE_WEIGHT else 0
        )
    return folded
