"""Draw a plan as HTML/CSS boxes with each node's live state.

No script and no network: the server renders the plan's format (INTERFACES.md
"Plans as graphs") as nested lists that CSS lays out as a chain. A linear
plan is a chain of boxes; `branch` lists its cases, `parallel` its branches
side by side, `map` its body with the items it runs over, `workflow` the
child workflow, `fail` its message. Jumps (`next`, `on_reject`) are labels.
Blocks are drawn recursively, so a block inside a block is drawn too.

The same picture serves the admin's run page, the workflow editor (with the
validation problems on the boxes they concern) and a reviewer's request page
(with the node the request is for highlighted). Each box carries the node's
path in validation's form (`id`, `<block>/<branch>/<id>`, `<map>/<id>`) as
`data-path`, and its id as `data-node`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from workflows import selectors
from workflows.display import compact_json, titled
from workflows.models import Step

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
    # Validation problems by node path; the boxes drawn take theirs out.
    errors: dict[str, list[str]] = field(default_factory=dict)
    # The node a request is for; the nodes its approval guards.
    highlight: str = ""
    guarded: frozenset[str] = frozenset()
    # Node id -> where its box links (a child run, a child workflow).
    links: dict[str, str] = field(default_factory=dict)


STEP_STATES = {
    "succeeded": "done",
    "running": "running",
    "needs_input": "waiting",
    "unknown": "waiting",
    "interrupted": "running",
}


def _what(node: dict[str, Any], view: _View) -> SafeString | str:
    context = view.context
    kind = node.get("type", "action")
    if kind == "action":
        title = f" — {titled(node['title'], context)}" if node.get("title") else ""
        return f"{node.get('action', '')}{title}"
    if kind in ("approval", "input"):
        who = f" — {node['assign_to']}" if node.get("assign_to") else ""
        return f"{titled(node.get('title', ''), context)}{who}"
    if kind == "workflow":
        version = f" v{node['version']}" if node.get("version") else ""
        text = f"{node.get('workflow', '')}{version}"
        url = view.links.get(str(node.get("id", "")))
        return format_html('<a href="{}">{}</a>', url, text) if url else text
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


def _inner(node: dict[str, Any], view: _View, path: str) -> SafeString:
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
                    (index + 1, _chain(branch.get("nodes") or [], view, f"{path}/{index}/"))
                    for index, branch in enumerate(branches)
                ),
            ),
        )
    if kind == "map":
        return format_html(
            '<div class="agentos-branches"><div class="agentos-branch">{}</div></div>',
            _chain(node.get("nodes") or [], view, f"{path}/"),
        )
    if kind == "workflow" and (node.get("inputs") or node.get("outputs")):
        return format_html(
            "<small>inputs {} · outputs {}</small>",
            compact_json(node.get("inputs")) or "—",
            compact_json(node.get("outputs")) or "—",
        )
    return mark_safe("")


def _marks(node_id: str, path: str, view: _View) -> SafeString:
    """Return the notes on a box: this request's node, guarded, its problems."""
    parts = []
    if view.highlight and node_id == view.highlight:
        parts.append(mark_safe('<span class="agentos-here">this request</span>'))
    if node_id in view.guarded:
        parts.append(mark_safe('<span class="agentos-guarded">runs as approved here</span>'))
    problems = view.errors.pop(path, [])
    if problems:
        parts.append(
            format_html(
                '<ul class="agentos-node-errors" role="list">{}</ul>',
                format_html_join("", "<li>{}</li>", ((p,) for p in problems)),
            )
        )
    return mark_safe("".join(parts))


def _box(node: dict[str, Any], view: _View, path: str) -> SafeString:
    kind = str(node.get("type", "action"))
    node_id = str(node.get("id", ""))
    state = view.states.get(node_id, "pending")
    classes = f"agentos-node kind-{kind} state-{state}"
    if view.highlight and node_id == view.highlight:
        classes += " is-here"
    if path in view.errors:
        classes += " has-error"
    marks = _marks(node_id, path, view)
    return format_html(
        '<li class="{}" data-node="{}" data-path="{}"{}>'
        '<div class="agentos-node-head"><span class="agentos-kind">{}</span> '
        "<strong><code>{}</code></strong> "
        '<span class="agentos-node-state">{}</span></div>'
        '<div class="agentos-node-what">{}</div>{}{}{}</li>',
        classes,
        node_id,
        path,
        mark_safe(' aria-current="step"') if "is-here" in classes else "",
        KIND_LABELS.get(kind, kind),
        node_id,
        STATE_LABELS.get(state, state),
        _what(node, view),
        marks,
        _jumps(node),
        _inner(node, view, path),
    )


def _chain(nodes: list[Any], view: _View, prefix: str = "") -> SafeString:
    boxes = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        view.budget -= 1
        if view.budget < 0:
            boxes.append(mark_safe('<li class="agentos-node">… more nodes (see the plan)</li>'))
            break
        node_id = node.get("id")
        label = node_id if isinstance(node_id, str) and node_id else f"#{index + 1}"
        boxes.append(_box(node, view, f"{prefix}{label}"))
    if not boxes:
        return mark_safe('<p class="agentos-none">No nodes.</p>')
    return format_html('<ol class="agentos-chain">{}</ol>', mark_safe("".join(boxes)))


def render_graph(
    plan: dict[str, Any] | None,
    states: dict[str, str],
    context: dict[str, Any] | None = None,
    *,
    errors: dict[str, list[str]] | None = None,
    highlight: str = "",
    guarded: frozenset[str] = frozenset(),
    links: dict[str, str] | None = None,
    label: str = "The plan, node by node",
) -> SafeString:
    """Return the plan's picture; `states` maps node ids to their state.

    Titles and messages show the run's context values (`context`, already
    redacted) where it has them. `errors` (node path -> messages) are drawn
    on their boxes and taken out of the mapping: what is left in it belongs
    to no box. `highlight` names the node a request is for, `guarded` the
    nodes its approval guards, `links` where a node's box links.
    """
    nodes = (plan or {}).get("nodes") if isinstance(plan, dict) else None
    view = _View(
        states=states,
        context=context or {},
        budget=MAX_NODES,
        errors=errors if errors is not None else {},
        highlight=highlight,
        guarded=guarded,
        links=links or {},
    )
    return format_html(
        '<div class="agentos-graph" role="group" aria-label="{}">{}</div>',
        label,
        _chain(nodes if isinstance(nodes, list) else [], view),
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


def run_states(run: Any, steps: list[Any], requests: list[Any]) -> dict[str, str]:
    """Return the state of each node id of a run, as its picture colours them.

    `steps` and `requests` are the run's, oldest first. On a graph run the
    engine's node-path states (lanes, items, branches taken) are folded in.
    """
    states = node_states(
        plan=run.plan,
        position=run.position,
        run_status=run.status,
        current_node=run.current_node,
        steps=steps,
        requests=requests,
    )
    linear = all(
        node.get("type", "action") in ("action", "approval", "input")
        and not node.get("next")
        and not node.get("on_reject")
        for node in run.nodes
    )
    if not linear:
        # A graph run: the engine knows which lanes, items and branches are
        # where (node paths); the boxes show that, folded onto node ids.
        path_steps = list(Step.objects.filter(run=run).values("status", "node_path"))
        states.update(states_by_node_id(selectors.node_states(run, path_steps)))
    return states


def guarded_ids(guards: list[dict[str, Any]]) -> frozenset[str]:
    """Return the node ids of a request's guarded actions (their paths folded)."""
    found = set()
    for guard in guards:
        path = str(guard.get("node") or "")
        found.add(path.rsplit("/", 1)[-1].split("[", 1)[0])
    return frozenset(found - {""})


def request_picture(
    request: Any,
    context: dict[str, Any],
    *,
    steps: list[Any] | None = None,
    links: dict[str, str] | None = None,
) -> SafeString:
    """Return a request's run drawn with the request's node outlined.

    Each box shows its node's state; the actions the request's approval
    guards are marked. `context` is the run's, already redacted; `steps`
    the run's (read here when not given).
    """
    run = request.run
    if steps is None:
        steps = list(Step.objects.filter(run=run).order_by("id"))
    requests = list(run.approval_requests.order_by("created_at", "id"))
    return render_graph(
        run.plan,
        run_states(run, steps, requests),
        context,
        highlight=request.node_id,
        guarded=guarded_ids(request.guards or []),
        links=links,
        label=f"The plan of run {run.pk}; this request is for node {request.node_id}",
    )


def child_run_links(run: Any) -> dict[str, str]:
    """Return node id -> the admin page of the child run that node started."""
    # Ordered by id, not the runs' default (newest first): on SQLite that
    # order walked the whole table by creation time (ANALYZE rates the
    # parent index useless when nearly every run has no parent).
    children = run.forks.exclude(parent_node="").order_by("id").values_list("parent_node", "pk")
    return {node: reverse("admin:workflows_run_change", args=[child]) for node, child in children}
