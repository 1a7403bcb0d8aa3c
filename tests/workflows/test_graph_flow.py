"""Plans as graphs: next, branch (CEL), fail, on_reject, decisions, loops.

Each run is driven in-process by the real engine; every action runs in a
real subprocess and writes a line to a ledger, so the path taken is read
from what actually ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.services import approval_decide
from tests.support.runs import advance, pending_request
from workflows import executor_config
from workflows.events import verify_all
from workflows.models import Event, Run
from workflows.plans import validate_plan
from workflows.services import run_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


def write(node_id: str, ledger: Path, **extra: object) -> dict:
    return {
        "id": node_id,
        "action": "test.ledger_append",
        "params": {"ledger": str(ledger), "line": node_id},
        **extra,
    }


def lines(ledger: Path) -> list[str]:
    return ledger.read_text().split() if ledger.exists() else []


def start(plan: dict, operator, context: dict | None = None) -> Run:  # type: ignore[no-untyped-def]
    return run_create(mode="autonomous", requester=operator, plan=plan, context=context or {})


def errors_of(plan: dict, **kwargs: object) -> list[tuple[str, str, str]]:
    found = validate_plan(
        plan, registry=executor_config.registry(), policy=executor_config.policy(), **kwargs
    )
    return [(e.node, e.field, e.message) for e in found]


# --- validation ---------------------------------------------------------------


def test_validation_reports_every_structural_problem_at_once(tmp_path: Path) -> None:
    """Unknown targets, bad CEL, non-boolean conditions, cycles, unreachable nodes."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "route",
                "type": "branch",
                "cases": [
                    {"when": "amount >", "next": "a"},
                    {"when": "amount + 1", "next": "a"},
                    {"when": "amount > 1", "next": "nowhere"},
                ],
                "default": "a",
            },
            write("a", ledger, next="route"),
            {"id": "stop", "type": "fail", "message": "no", "next": "a"},
        ]
    }
    found = errors_of(plan)
    fields = {(node, field) for node, field, _ in found}
    assert ("route", "cases.0.when") in fields
    assert ("route", "cases.1.when") in fields
    assert ("route", "cases.2.next") in fields
    assert ("a", "next") in fields  # back to route without max_visits
    assert ("stop", "next") in fields
    messages = " ".join(message for _, _, message in found)
    assert "not a valid CEL expression" in messages
    assert "must be boolean" in messages
    assert "unbounded cycle" in messages


def test_validation_finds_unreachable_nodes_and_reserved_ids(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            write("a", ledger, next="end"),
            write("orphan", ledger),
            {"id": "end", "type": "fail", "message": "x"},
        ]
    }
    found = errors_of(plan)
    assert ("orphan", "id", "unreachable: no path leads to this node") in found
    assert any(node == "end" and field == "id" for node, field, _ in found)


def test_stored_conditions_must_read_declared_keys(tmp_path: Path) -> None:
    plan = {
        "nodes": [
            {
                "id": "route",
                "type": "branch",
                "cases": [{"when": "amount > 10 && secrets == 1", "next": "end"}],
            },
            write("a", tmp_path / "ledger"),
        ]
    }
    found = errors_of(plan, inputs_schema={"properties": {}}, stored=True)
    messages = [m for node, field, m in found if field == "cases.0.when"]
    assert any("reads amount" in m for m in messages)
    assert any("secrets does not name a context value" in m for m in messages)
    ok = errors_of(plan, inputs_schema={"properties": {"amount": {"type": "number"}}}, stored=True)
    assert [e for e in ok if e[1] == "cases.0.when"] == [
        ("route", "cases.0.when", "secrets does not name a context value")
    ]


def test_a_linear_plan_stays_valid(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    assert errors_of({"nodes": [write("a", ledger), write("b", ledger)]}) == []


# --- running --------------------------------------------------------------------


def purchase_plan(ledger: Path) -> dict:
    return {
        "nodes": [
            {
                "id": "route",
                "type": "branch",
                "cases": [{"when": "amount > 5000", "next": "finance"}],
                "default": "manager",
            },
            {
                "id": "finance",
                "type": "approval",
                "title": "Finance: {{ amount }}",
                "on_reject": "tell",
                "next": "order",
            },
            {"id": "manager", "type": "approval", "title": "Manager", "on_reject": "tell"},
            write("order", ledger, next="end"),
            write("tell", ledger),
            {
                "id": "rejected",
                "type": "fail",
                "message": "Rejected: {{ decisions.manager.comment }}",
            },
        ]
    }


def test_a_branch_routes_by_a_cel_condition(tmp_path: Path, operator, reviewer) -> None:
    ledger = tmp_path / "ledger"
    big = advance(start(purchase_plan(ledger), operator, {"amount": 9000}))
    assert big.status == RunStatus.WAITING
    assert pending_request(big).node_id == "finance"
    small = advance(start(purchase_plan(ledger), operator, {"amount": 100}))
    assert pending_request(small).node_id == "manager"
    taken = Event.objects.get(run=small, type="branch.taken").data
    assert taken["next"] == "manager" and taken["case"] is None

    approval_decide(request_id=pending_request(big).pk, actor=reviewer, decision="approve")
    big = advance(big)
    assert big.status == RunStatus.SUCCEEDED, big.error
    assert lines(ledger) == ["order"]  # next: end, the rejection path never ran
    assert big.graph["decisions"]["finance"]["decision"] == "approve"
    assert big.graph["decisions"]["finance"]["decided_by"] == reviewer.username
    assert verify_all() == []


def test_on_reject_routes_and_the_decision_is_readable(tmp_path: Path, operator, reviewer) -> None:
    """A rejection follows on_reject; decisions.<node> carries the comment."""
    ledger = tmp_path / "ledger"
    run = advance(start(purchase_plan(ledger), operator, {"amount": 100}))
    approval_decide(
        request_id=pending_request(run).pk, actor=reviewer, decision="reject", comment="too dear"
    )
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.current_node == "tell"
    run = advance(run)
    assert run.status == RunStatus.FAILED
    assert run.error == "Rejected: too dear"
    assert lines(ledger) == ["tell"]
    decision = run.graph["decisions"]["manager"]
    assert decision["decision"] == "reject" and decision["comment"] == "too dear"
    assert decision["decided_by"] == reviewer.username and decision["at"]


def test_a_rejection_without_on_reject_still_fails_the_run(
    tmp_path: Path, operator, reviewer
) -> None:
    ledger = tmp_path / "ledger"
    plan = {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}, write("a", ledger)]}
    run = advance(start(plan, operator))
    approval_decide(
        request_id=pending_request(run).pk, actor=reviewer, decision="reject", comment="no"
    )
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert lines(ledger) == []


def test_a_missing_key_in_a_condition_asks_for_it(tmp_path: Path, operator, reviewer) -> None:
    ledger = tmp_path / "ledger"
    run = advance(start(purchase_plan(ledger), operator))
    request = pending_request(run)
    assert request.node_id == "route"
    assert list(request.fields["properties"]) == ["amount"]
    approval_decide(
        request_id=request.pk, actor=reviewer, decision="approve", values={"amount": "9000"}
    )
    run = advance(run)
    # A string is not a number: the condition's error fails the run, naming it.
    assert run.status == RunStatus.FAILED
    assert "route" in run.error and "amount > 5000" in run.error


def test_a_runtime_error_in_a_condition_fails_the_run(tmp_path: Path, operator) -> None:
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "route",
                "type": "branch",
                "cases": [{"when": "10 / count > 1", "next": "end"}],
            },
            write("a", ledger),
        ]
    }
    run = advance(start(plan, operator, {"count": 0}))
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("route: '10 / count > 1' failed")
    assert lines(ledger) == []


def test_a_loop_runs_until_max_visits_then_fails_naming_the_node(tmp_path: Path, operator) -> None:
    ledger = tmp_path / "ledger"
    plan = {"nodes": [write("again", ledger, max_visits=3, next="again")]}
    run = advance(start(plan, operator))
    assert run.status == RunStatus.FAILED
    assert run.error == "again: entered more than max_visits (3) times"
    assert lines(ledger) == ["again"] * 3
    steps = list(run.steps.order_by("id").values_list("visit", "idempotency_key"))
    assert [visit for visit, _ in steps] == [1, 2, 3]
    assert len({key for _, key in steps}) == 3


def test_a_loop_with_a_branch_exits_when_its_condition_holds(
    tmp_path: Path, operator, reviewer
) -> None:
    """An input node inside a loop: the loop ends when the answer says so."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            write("work", ledger, max_visits=5),
            {
                "id": "check",
                "type": "input",
                "title": "Done?",
                "fields": {"done": {"type": "boolean"}},
                "max_visits": 5,
            },
            {"id": "loop", "type": "branch", "cases": [{"when": "!done", "next": "work"}]},
            write("after", ledger),
        ]
    }
    run = advance(start(plan, operator))
    for answer in (False, False, True):
        approval_decide(
            request_id=pending_request(run).pk,
            actor=reviewer,
            decision="approve",
            values={"done": answer},
        )
        run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger) == ["work", "work", "work", "after"]


def test_the_api_shows_node_paths_states_and_decisions(
    tmp_path: Path, operator, reviewer, client
) -> None:
    """What a picture of the graph needs: active nodes and each node's state."""
    ledger = tmp_path / "ledger"
    run = advance(start(purchase_plan(ledger), operator, {"amount": 9000}))
    client.force_login(operator)
    body = client.get(f"/api/v1/runs/{run.pk}").json()
    assert body["active_nodes"] == ["finance"]
    assert body["node_states"]["route"] == "done"
    assert body["node_states"]["finance"] == "waiting"
    assert body["node_states"]["order"] == "pending"
    client.force_login(reviewer)
    approval = client.get(f"/api/v1/approvals/{pending_request(run).pk}").json()
    assert approval["node_path"] == "finance"
    assert [g["node"] for g in pending_request(run).guards] == ["order"]
    approval_decide(request_id=pending_request(run).pk, actor=reviewer, decision="approve")
    run = advance(run)
    client.force_login(operator)
    body = client.get(f"/api/v1/runs/{run.pk}").json()
    assert body["active_nodes"] == []
    assert body["decisions"]["finance"]["decision"] == "approve"
    assert body["steps"][0]["node_path"] == "order" and body["steps"][0]["visit"] == 1
    assert body["node_states"] == {
        "route": "done",
        "finance": "done",
        "order": "done",
        "manager": "skipped",
        "tell": "skipped",
        "rejected": "skipped",
    }


def test_replay_and_fork_follow_the_graph(tmp_path: Path, operator, reviewer) -> None:
    """The time machine folds branch.taken and decisions; a fork keeps them."""
    from workflows.forks import run_fork
    from workflows.replay import state_at

    ledger = tmp_path / "ledger"
    run = advance(start(purchase_plan(ledger), operator, {"amount": 100}))
    approval_decide(
        request_id=pending_request(run).pk, actor=reviewer, decision="reject", comment="no"
    )
    run = advance(run)
    seqs = {e.type: e.seq for e in Event.objects.filter(run=run)}
    at_branch = state_at(run, seqs["branch.taken"])
    assert at_branch.current_node == "manager"
    after = state_at(run, seqs["run.resumed"])
    assert after.current_node == "tell" and after.decisions["manager"]["comment"] == "no"
    fork = run_fork(run_id=run.pk, at_seq=seqs["run.resumed"], actor=operator)
    assert fork.current_node == "tell"
    assert fork.graph["decisions"]["manager"]["decision"] == "reject"
    fork = advance(fork)
    assert fork.status == RunStatus.FAILED and fork.error == "Rejected: no"


def test_the_purchase_approval_demo_routes_by_amount(
    workspace: Path, operator, reviewer, settings
) -> None:
    """seed_demo's purchase approval: Finance above 5,000; a rejection ends it."""
    from django.core.management import call_command

    from workflows.models import Workflow

    call_command("seed_demo", "--password", "x", verbosity=0)
    workflow = Workflow.objects.get(slug="purchase-approval")
    big = advance(
        run_create(
            workflow=workflow, requester=operator, context={"item": "Server", "amount": 9000}
        )
    )
    assert pending_request(big).node_id == "finance"
    small = advance(
        run_create(workflow=workflow, requester=operator, context={"item": "Desk", "amount": 300})
    )
    assert pending_request(small).node_id == "manager"
    approval_decide(
        request_id=pending_request(big).pk,
        actor=reviewer,
        decision="reject",
        comment="over budget",
    )
    big = advance(big)
    assert big.status == RunStatus.FAILED
    assert big.error == "Finance rejected the purchase: over budget"
    approval_decide(request_id=pending_request(small).pk, actor=reviewer, decision="approve")
    small = advance(small)
    assert small.status == RunStatus.SUCCEEDED, small.error
    assert (workspace / "demo" / "purchases" / "ordered" / "Desk.txt").exists()
