"""Deciding a run's next node: finish, pause for a person, wait, or start a step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from executors.base import Action
from workflows import executor_config, graph, hooks, plan_review
from workflows.engine import blocks, children, flow
from workflows.engine.asks import (
    ask_gate_again,
    ask_options,
    digest_mismatch,
    missing_ask,
    no_fields,
    pause,
    step_unknown,
    text,
    unknown_ask,
)
from workflows.engine.base import FAILED_ATTEMPT, STOP, Outcome, Wait, _Next, _Stop, append_event
from workflows.engine.steps import retry_wait, start_step, step_interrupted
from workflows.guards import governing_gates, guard_entry, guards_after, still_approved
from workflows.models import Run, Step
from workflows.plans import InputNode, node_fields_schema
from workflows.resume import ResumeGrant
from workflows.services import run_fail, set_status
from workflows.states import RunMode, RunStatus, StepStatus
from workflows.templating import render


def _grant(run: Run) -> ResumeGrant:
    """Return the run's grant if it is about its current node, else an empty one."""
    grant = run.grant
    return grant if grant.at(run.current_node, run.position) else ResumeGrant()


def _needs_review(mode: str, risk: str) -> bool:
    return mode == RunMode.INTERACTIVE or (mode == RunMode.ASSISTED and risk == "high")


# A run hops through routing nodes (branches) within one decision; a bound
# on the hops keeps a plan's loops of branches from spinning in one commit.
MAX_HOPS = 1000


def decide(run: Run, owner: str, *, new_position: bool = False) -> Outcome:
    """Decide the run's next move at its position; route through branches."""
    for _ in range(MAX_HOPS):
        nodes = run.nodes
        if run.position >= len(nodes):
            run.current_node = ""
            set_status(run, RunStatus.SUCCEEDED)
            append_event(run, type="run.succeeded", data={"context": run.context})
            return STOP
        node = nodes[run.position]
        run.current_node = node["id"]
        if _plan_review_pending(run):
            return STOP
        if flow.over_visits(run, node, flow.visit_of(run, node["id"]), node["id"]):
            return STOP
        kind = node.get("type", "action")
        if kind == "fail":
            flow.fail_node(run, node, flow.scope(run), node["id"])
            return STOP
        if kind in ("parallel", "map"):
            outcome = blocks.decide_block(run, node, owner)
            if not isinstance(outcome, _Next):
                return outcome
            new_position = True
            continue
        if kind == "workflow":
            outcome = children.decide_child(run, node)
            if not isinstance(outcome, _Next):
                return outcome
            new_position = True
            continue
        if kind != "branch":
            return _decide_node(run, node, owner, new_position=new_position)
        try:
            chosen = flow.branch_choose(run, node)
        except graph.ConditionError as exc:
            run_fail(run=run, actor=None, node=node["id"], error=f"{node['id']}: {exc}")
            return STOP
        if isinstance(chosen, list):
            label = node.get("title") or node["id"]
            pause(run, **missing_ask(run, node, None, chosen, label=label, to="decide the branch"))
            return STOP
        target, case = chosen
        flow.branch_taken(run, node, target, case)
        flow.move_to(run, target)
        new_position = True
    run_fail(run=run, actor=None, error=f"more than {MAX_HOPS} branches in one move")
    return STOP


def _decide_node(run: Run, node: dict[str, Any], owner: str, *, new_position: bool) -> Outcome:
    nodes = run.nodes
    kind = node.get("type", "action")
    if kind == "approval":
        pause(
            run,
            purpose="approval_node",
            kind="approval",
            title=text(node["title"], flow.scope(run)),
            description=node.get("description", ""),
            fields=no_fields(),
            assign_to=node.get("assign_to"),
            guards=guards_after(nodes, run.position, flow.scope(run)),
            options=ask_options(node),
        )
        return STOP
    if kind == "input":
        schema = node_fields_schema(InputNode.model_validate(node))
        pause(
            run,
            purpose="input_node",
            kind="input",
            title=text(node["title"], flow.scope(run)),
            description=node.get("description", ""),
            fields=schema,
            assign_to=node.get("assign_to"),
            options=ask_options(node),
        )
        return STOP
    return _decide_action(run, node, owner, new_position=new_position)


def _plan_review_pending(run: Run) -> bool:
    """Pause for the plan's review, or stop a run whose approved plan changed."""
    grant = run.grant
    if grant.plan_review == plan_review.PENDING:
        digest = plan_review.plan_digest(run.plan)
        pause(
            run,
            purpose="plan_review",
            kind="approval",
            title=f"Review the plan ({len(run.nodes)} steps) before it runs",
            description=plan_review.review_table(run.plan, executor_config.registry()),
            fields=plan_review.review_fields(run.plan, executor_config.registry()),
            state={
                "digest": digest,
                "plan": run.plan,
                "rows": plan_review.review_rows(run.plan, executor_config.registry()),
            },
        )
        return True
    approved = grant.plan_digest
    if approved and approved != plan_review.plan_digest(run.plan):
        run_fail(run=run, actor=None, error="the plan differs from the one approved")
        return True
    return False


def _decide_action(
    run: Run, node: dict[str, Any], owner: str, *, new_position: bool = False
) -> Outcome:
    """Start an action node's step, or say why not yet (a pause, a wait, the end).

    In order: its parameters resolve, its gate approved it in this run, the
    mode's review passed, what was approved still matches, and an earlier
    attempt (interrupted, failed) allows another one now.
    """
    action = executor_config.registry().get(node["action"])
    params = _resolve_params(run, node, action)
    if params is None:
        return STOP
    grant = _grant(run)
    gate, covered = _gate_covering(run, node)
    if not covered:
        assert gate is not None
        ask_gate_again(run, gate, node, reason="no approval of this gate in this run")
        return STOP
    if _review_needed(run, node, action, params, grant):
        return STOP
    if not _honour_grant(run, node, action, params, grant, gate):
        return STOP
    visit = flow.visit_of(run, node["id"])
    attempt = _next_attempt(run, node, action, grant, visit=visit, new_position=new_position)
    if not isinstance(attempt, int):
        return attempt
    key = f"run{run.pk}-{node['id']}-{run.position}" + (f"-v{visit}" if visit > 1 else "")
    return start_step(
        run,
        node,
        owner,
        action=action,
        params=params,
        position=run.position,
        visit=visit,
        attempt=attempt,
        key=key,
        grant=grant,
    )


def _resolve_params(run: Run, node: dict[str, Any], action: Any) -> dict[str, Any] | None:
    """Render the node's parameters; pause for what is missing (None then)."""
    label = node.get("title") or f"{node['id']} ({node['action']})"
    missing: set[str] = set()
    params = render(node.get("params", {}), flow.scope(run), missing)
    if missing:
        label = text(label, flow.scope(run))
        pause(run, **missing_ask(run, node, action, sorted(missing), label=label))
        return None
    return dict(params)


def _gate_covering(run: Run, node: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """Return the gate this step is behind and whether this run approved it.

    A step behind a gate runs only on an approval of that gate in this very
    run (a fork that starts past its parent's gate has none of its own).
    """
    nodes = run.nodes
    gates = [nodes[index] for index in _plan_facts(run).gates_of(nodes, run.position)]
    for candidate in gates:
        if hooks.approved_guard(
            run=run, node_id=node["id"], position=run.position, gate=candidate["id"]
        ):
            return candidate, True
    return (gates[0], False) if gates else (None, True)


def _review_needed(
    run: Run,
    node: dict[str, Any],
    action: type[Action],
    params: dict[str, Any],
    grant: ResumeGrant,
) -> bool:
    """Pause for the mode's review of this step unless it passed (True: paused)."""
    if not _needs_review(run.mode, action.risk) or grant.approved:
        return False
    _ask_review(
        run,
        node,
        action,
        params,
        title=f"Run {node['action']} ({node['id']})?",
        description=action.description,
    )
    return True


def _ask_review(
    run: Run,
    node: dict[str, Any],
    action: type[Action],
    params: dict[str, Any],
    *,
    title: str,
    description: str,
) -> None:
    """Pause for a reviewer's look at this step with these parameters (the mode's gate)."""
    pause(
        run,
        purpose="mode_gate",
        kind="approval",
        title=title,
        description=description,
        fields=no_fields(),
        state={"action": node["action"], "params": params, "risk": action.risk},
        guards=[guard_entry(node=node, position=run.position, params=params, unresolved=[])],
    )


def _honour_grant(
    run: Run,
    node: dict[str, Any],
    action: type[Action],
    params: dict[str, Any],
    grant: ResumeGrant,
    gate: dict[str, Any] | None,
) -> bool:
    """Return whether what a person approved is what would run; else ask again.

    A guarded step whose resolved parameters no longer match the digest a
    person approved does not run: the gate (or the mode's review) is asked
    again.
    """
    approved = (
        hooks.approved_guard(run=run, node_id=node["id"], position=run.position)
        if _may_be_guarded(run, grant)
        else None
    )
    if approved is None:
        return True
    answered = tuple(grant.values) if grant.resume else ()
    matches, current = still_approved(approved, node, flow.scope(run), answered=answered)
    if matches:
        return True
    digest_mismatch(run, node, approved, current)
    if gate is not None:
        # Asked of the gate's own group, with its quorum: a change behind
        # a gate is not for any reviewer to wave through.
        ask_gate_again(
            run, gate, node, reason="the parameters changed since the gate was approved"
        )
        return False
    _ask_review(
        run,
        node,
        action,
        params,
        title=f"Parameters changed since approval: run {node['action']} ({node['id']})?",
        description="The parameters this step would run with differ from the ones "
        "approved. Review them again.",
    )
    return False


def _next_attempt(
    run: Run,
    node: dict[str, Any],
    action: type[Action],
    grant: ResumeGrant,
    *,
    visit: int,
    new_position: bool,
) -> int | Wait | _Stop:
    """Return the number of the attempt to start now, or a Wait, or STOP.

    An attempt left running by a worker that died is interrupted (retried if
    the action is idempotent or a person asked to, else its outcome is
    unknown); failed attempts are retried with backoff up to `max_attempts`.
    """
    # A position the run has only just moved to (in this transaction) has no
    # attempts yet: positions only grow, and forks carry only earlier steps.
    steps = (
        []
        if new_position
        else list(
            Step.objects.filter(
                run=run, node_id=node["id"], position=run.position, visit=visit
            ).order_by("attempt")
        )
    )
    last = steps[-1] if steps else None
    granted = False
    if last is not None and last.status in (StepStatus.RUNNING, StepStatus.UNKNOWN):
        if grant.retry:
            # A person checked the system and asked for another attempt.
            granted = True
            run.set_grant(grant.with_(retry=False))
        elif not action.idempotent:
            outcome_unknown(run, node, last)
            return STOP
        step_interrupted(run, last)
    if last is None:
        return 1
    if last.status in FAILED_ATTEMPT and not granted:
        waiting = retry_wait(run, node, node["id"], steps)
        if waiting is not None:
            return waiting
    return last.attempt + 1


def _may_be_guarded(run: Run, clear: ResumeGrant) -> bool:
    """Return whether a person may have approved this step's parameters.

    Only a gate records what it lets run: an approval node earlier in the
    plan, or the mode's review of this very step (which leaves `approved` in
    the grant). Without either there is no approval to look up, and a
    plain run's steps skip that query.
    """
    if clear.approved:
        return True
    facts = _plan_facts(run)
    # With jumps, a gate later in the list may lead back here.
    return bool(facts.approvals) and (facts.jumps or facts.approvals[0] < run.position)


@dataclass
class _PlanFacts:
    """What deciding reads of a frozen plan at every step, worked out once per plan."""

    jumps: bool  # a node names its successor, or a branch chooses one
    approvals: list[int]  # the approval nodes' positions, in order
    gates: dict[int, list[int]] = field(default_factory=dict)  # by position

    def gates_of(self, nodes: list[dict[str, Any]], position: int) -> list[int]:
        """Return `guards.governing_gates(nodes, position)`, worked out once per position."""
        if not self.jumps and not self.gates:
            # A straight line: each position's gate is the nearest node before
            # it that is not an action, when that is an approval. One pass
            # gives every position's, where asking each walked back to it.
            nearest: list[int] = []
            for index, node in enumerate(nodes):
                self.gates[index] = nearest
                kind = node.get("type", "action")
                if kind != "action":
                    nearest = [index] if kind == "approval" else []
            self.gates[len(nodes)] = nearest
        gates = self.gates.get(position)
        if gates is None:
            gates = self.gates[position] = governing_gates(nodes, position)
        return list(gates)


# The last plan's facts, with the plan itself. A run's plan is frozen (a plan
# review replaces the dict, it never edits it), and a worker's stay keeps one
# plan object for all its steps (engine.base.Held), so these scans over every
# node run once per stay instead of at every step.
_facts: tuple[dict[str, Any], _PlanFacts] | None = None


def _plan_facts(run: Run) -> _PlanFacts:
    global _facts
    plan = run.plan
    if _facts is None or _facts[0] is not plan:
        nodes = plan.get("nodes", [])
        facts = _PlanFacts(
            jumps=any(node.get("next") or node.get("type") == "branch" for node in nodes),
            approvals=[i for i, node in enumerate(nodes) if node.get("type") == "approval"],
        )
        _facts = (plan, facts)
    return _facts[1]


def outcome_unknown(run: Run, node: dict[str, Any], step: Step) -> None:
    """Pause for a person to say whether an interrupted, non-idempotent attempt happened."""
    step_unknown(run, step, {"node": step.node_id, "evidence": step.evidence})
    state = {"evidence": step.evidence, "params": step.params, "error": step.error}
    pause(run, **unknown_ask(node, step, node["id"], state))
