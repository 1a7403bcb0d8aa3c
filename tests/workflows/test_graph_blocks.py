"""Blocks: parallel branches and maps, with gates inside them.

Driven in-process by the real engine; every action runs in a real
subprocess (several at once, each on a runner of its own), and the ledger
they write shows what ran and in which order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from tests.support.runs import advance
from workflows.events import verify_all
from workflows.models import Event, Run
from workflows.services import run_create
from workflows.states import RunStatus, StepStatus

pytestmark = pytest.mark.django_db


def pending(run: Run) -> list[ApprovalRequest]:
    return list(ApprovalRequest.objects.filter(run=run, status=RequestStatus.PENDING))


def sleep(node_id: str, ledger: Path, seconds: float = 0.5, **extra: object) -> dict:
    return {
        "id": node_id,
        "action": "test.sleep",
        "params": {"seconds": seconds, "ledger": str(ledger)},
        **extra,
    }


def meet(node_id: str, ledger: Path, count: int) -> dict:
    """An action that ends only once `count` such actions have started."""
    return {
        "id": node_id,
        "action": "test.meet",
        "params": {"ledger": str(ledger), "count": count},
    }


def write(node_id: str, ledger: Path, line: str | None = None, **extra: object) -> dict:
    return {
        "id": node_id,
        "action": "test.ledger_append",
        "params": {"ledger": str(ledger), "line": line or node_id},
        **extra,
    }


def lines(ledger: Path) -> list[str]:
    return ledger.read_text().splitlines() if ledger.exists() else []


def start(plan: dict, operator, context: dict | None = None) -> Run:  # type: ignore[no-untyped-def]
    return run_create(mode="autonomous", requester=operator, plan=plan, context=context or {})


def test_parallel_branches_really_run_at_the_same_time(tmp_path: Path, operator) -> None:
    """Every branch's action starts before any of them ends (each waits for the others)."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [{"nodes": [meet(f"s{i}", ledger, 3)]} for i in range(3)],
            },
            write("after", ledger),
        ]
    }
    run = advance(start(plan, operator))
    assert run.status == RunStatus.SUCCEEDED, run.error
    seen = lines(ledger)
    starts = [i for i, line in enumerate(seen) if line.startswith("start")]
    ends = [i for i, line in enumerate(seen) if line.startswith("end")]
    assert len(starts) == 3 and len(ends) == 3
    assert max(starts) < min(ends), seen
    assert seen[-1] == "after"
    paths = sorted(run.steps.exclude(node_id="after").values_list("node_path", flat=True))
    assert paths == ["setup/0/s0", "setup/1/s1", "setup/2/s2"]
    assert verify_all() == []


def test_a_gate_inside_a_branch_pauses_that_branch_only(
    tmp_path: Path, operator, reviewer
) -> None:
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {"id": "gate", "type": "approval", "title": "Badge?"},
                            write("badge", ledger),
                        ]
                    },
                    {"nodes": [write("hr", ledger), write("it", ledger)]},
                ],
            },
            write("laptop", ledger),
        ]
    }
    run = advance(start(plan, operator))
    # The other branch ran to its end; only then is the run waiting.
    assert run.status == RunStatus.WAITING
    assert lines(ledger) == ["hr", "it"]
    (request,) = pending(run)
    assert request.node_path == "setup/0/gate"
    assert [g["path"] for g in request.guards] == ["setup/0/badge"]
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger) == ["hr", "it", "badge", "laptop"]
    assert verify_all() == []


def test_a_gate_in_a_branch_while_another_runs_keeps_the_run_running(
    tmp_path: Path, operator
) -> None:
    """A branch waiting for a person does not make the run wait while another works."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]},
                    {"nodes": [sleep("slow", ledger, 0.5)]},
                ],
            }
        ]
    }
    run = advance(start(plan, operator))
    assert run.status == RunStatus.WAITING
    waiting = Event.objects.filter(run=run, type="node.waiting").first()
    paused = Event.objects.get(run=run, type="run.paused")
    # The branch's request came first; the run paused only after the sleep ended.
    assert waiting.seq < paused.seq
    ended = Event.objects.get(run=run, type="step.succeeded")
    assert ended.seq < paused.seq
    assert paused.data["waiting"] == ["setup/0/gate"]


def test_a_failing_branch_cancels_the_others(tmp_path: Path, operator) -> None:
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {"nodes": [sleep("long", ledger, 60)]},
                    {
                        "nodes": [
                            sleep("short", ledger, 0.3),
                            {
                                "id": "boom",
                                "action": "test.fail",
                                "params": {"message": "the portal said no"},
                            },
                        ]
                    },
                ],
            },
            write("never", ledger),
        ]
    }
    run = advance(start(plan, operator))
    assert run.status == RunStatus.FAILED
    assert "setup/1/boom" in run.error and "the portal said no" in run.error
    long = run.steps.get(node_id="long")
    assert long.status == StepStatus.CANCELLED
    assert "end" not in " ".join(line for line in lines(ledger) if "long" in line)
    assert "never" not in lines(ledger)


def test_a_map_runs_each_item_and_collects_results_in_order(tmp_path: Path, operator) -> None:
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "orders",
                "type": "map",
                "items": "{{ people }}",
                "as": "person",
                "max_concurrency": 2,
                "results": "placed",
                "nodes": [
                    write("order", ledger, "{{ person.name }}", outputs={"ordered": "line"}),
                    write("confirm", ledger, "ok {{ ordered }}", outputs={"confirmed": "line"}),
                ],
            },
            write("after", ledger, "placed: {{ placed }}"),
        ]
    }
    people = [{"name": name} for name in ("ada", "bob", "cy", "dee", "eve")]
    run = advance(start(plan, operator, {"people": people}))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.context["placed"] == [
        {"ordered": p["name"], "confirmed": f"ok {p['name']}"} for p in people
    ]
    # A map item's outputs stay in its item: none leak into the context.
    assert "ordered" not in run.context
    assert sorted(run.steps.filter(node_id="order").values_list("node_path", flat=True)) == [
        f"orders[{i}]/order" for i in range(5)
    ]
    assert verify_all() == []


def test_a_gate_inside_a_map_asks_per_item(tmp_path: Path, operator, reviewer) -> None:
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "orders",
                "type": "map",
                "items": "{{ people }}",
                "as": "person",
                "nodes": [
                    {"id": "ok", "type": "approval", "title": "Order for {{ person }}?"},
                    write("order", ledger, "{{ person }}"),
                ],
            }
        ]
    }
    run = advance(start(plan, operator, {"people": ["ada", "bob"]}))
    assert run.status == RunStatus.WAITING
    requests = sorted(pending(run), key=lambda r: r.node_path)
    assert [r.node_path for r in requests] == ["orders[0]/ok", "orders[1]/ok"]
    assert [r.title for r in requests] == ["Order for ada?", "Order for bob?"]
    assert [g["params"]["line"] for r in requests for g in r.guards] == ["ada", "bob"]
    approval_decide(request_id=requests[1].pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert lines(ledger) == ["bob"]
    assert run.status == RunStatus.WAITING
    approval_decide(request_id=requests[0].pk, actor=reviewer, decision="reject", comment="no")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert lines(ledger) == ["bob"]


def test_a_map_refuses_more_than_the_item_cap(tmp_path: Path, operator) -> None:
    plan = {
        "nodes": [
            {
                "id": "each",
                "type": "map",
                "items": "{{ things }}",
                "as": "thing",
                "nodes": [write("w", tmp_path / "ledger")],
            }
        ]
    }
    run = advance(start(plan, operator, {"things": list(range(1001))}))
    assert run.status == RunStatus.FAILED
    assert run.error == "each: 1001 items, more than 1000"


def test_the_time_machine_shows_active_branches_and_forks_around_blocks(
    tmp_path: Path, operator, reviewer
) -> None:
    from workflows.forks import run_fork
    from workflows.plans import PlanInvalid
    from workflows.replay import state_at

    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            write("before", ledger),
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]},
                    {"nodes": [write("hr", ledger, outputs={"hr_line": "line"})]},
                ],
            },
            write("after", ledger),
        ]
    }
    run = advance(start(plan, operator))
    (request,) = pending(run)
    waiting = Event.objects.get(run=run, type="node.waiting")
    inside = state_at(run, waiting.seq)
    assert inside.block == "setup" and inside.current_node == "setup"
    assert "setup/0/gate" in inside.active
    paused = state_at(run, Event.objects.get(run=run, type="run.paused").seq)
    assert paused.active == ["setup/0/gate"] and paused.context["hr_line"] == "hr"
    # A fork from inside the block carries the lanes (tests/workflows/test_graph_nested.py);
    # an event number the run does not have is still refused, naming at_seq.
    with pytest.raises(PlanInvalid) as refused:
        run_fork(run_id=run.pk, at_seq=run.last_seq + 5, actor=operator)
    assert refused.value.errors[0].field == "at_seq"
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    finished = Event.objects.get(run=run, type="block.finished")
    after = state_at(run, finished.seq)
    assert after.block == "" and after.current_node == "after"
    fork = run_fork(run_id=run.pk, at_seq=finished.seq, actor=operator)
    fork = advance(fork)
    assert fork.status == RunStatus.SUCCEEDED, fork.error
    assert lines(ledger) == ["before", "hr", "after", "after"]


def test_a_gate_before_a_block_binds_each_lanes_first_actions(
    tmp_path: Path, operator, reviewer
) -> None:
    """The request lists every lane's action with its path; a changed value asks again."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "Go?"},
            {
                "id": "each",
                "type": "map",
                "items": "{{ people }}",
                "as": "person",
                "nodes": [write("hello", ledger, "hello {{ person }} from {{ team }}")],
            },
        ]
    }
    run = advance(start(plan, operator, {"people": ["ada", "bob"], "team": "red"}))
    (request,) = pending(run)
    assert [(g["path"], g["params"]["line"]) for g in request.guards] == [
        ("each[0]/hello", "hello ada from red"),
        ("each[1]/hello", "hello bob from red"),
    ]
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    # The value changes after the approval: what runs is no longer what was approved.
    Run.objects.filter(pk=run.pk).update(context={"people": ["ada", "bob"], "team": "blue"})
    run = advance(run)
    assert lines(ledger) == []
    assert Event.objects.filter(run=run, type="approval.digest_mismatch").count() == 2
    again = sorted(pending(run), key=lambda r: r.node_path)
    assert [r.node_path for r in again] == ["each[0]/hello", "each[1]/hello"]
    assert {r.state["gate"] for r in again} == {"gate"}
    for asked in again:
        approval_decide(request_id=asked.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert sorted(lines(ledger)) == ["hello ada from blue", "hello bob from blue"]


def test_a_risky_action_inside_a_block_still_needs_the_plans_review(
    tmp_path: Path, operator, reviewer
) -> None:
    """A bare plan is reviewed unless every action, in every block, is low-risk."""
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {"nodes": [write("a", tmp_path / "ledger")]},
                    {
                        "nodes": [
                            {
                                "id": "copy",
                                "action": "files.copy",
                                "params": {"source": "in.txt", "destination": "out.txt"},
                            }
                        ]
                    },
                ],
            }
        ]
    }
    run = advance(start(plan, operator))
    assert run.status == RunStatus.WAITING
    (request,) = pending(run)
    assert request.purpose == "plan_review"
    assert "copy.destination" in request.fields["properties"]
    assert not (tmp_path / "ledger").exists()


def test_node_states_and_active_nodes_name_each_branch(tmp_path: Path, operator, reviewer) -> None:
    """What a picture of the graph reads: each lane's nodes by path, live."""
    from workflows.selectors import run_detail

    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {"id": "gate", "type": "approval", "title": "Go?"},
                            write("badge", ledger),
                        ]
                    },
                    {"nodes": [write("hr", ledger)]},
                ],
            },
            write("after", ledger),
        ]
    }
    run = advance(start(plan, operator))
    detail = run_detail(run)
    assert detail["active_nodes"] == ["setup/0/gate"]
    states = detail["node_states"]
    assert states["setup/1/hr"] == "done"
    assert states["setup/0/gate"] == "waiting"
    assert states["setup"] == "waiting" and states["after"] == "pending"
    approval_decide(request_id=pending(run)[0].pk, actor=reviewer, decision="approve")
    run = advance(run)
    states = run_detail(run)["node_states"]
    keys = ("setup", "setup/0/gate", "setup/0/badge", "setup/1/hr", "after")
    assert {k: states[k] for k in keys} == {
        "setup": "done",
        "setup/0/gate": "done",
        "setup/0/badge": "done",
        "setup/1/hr": "done",
        "after": "done",
    }
    assert run_detail(run)["active_nodes"] == []


def test_a_missing_key_in_a_branchs_condition_is_asked_for_typed(
    tmp_path: Path, operator, reviewer
) -> None:
    """A lane's branch asks as a top-level one does: typed from the workflow's inputs."""
    from workflows.services import workflow_create

    ledger = tmp_path / "ledger"
    route = {
        "id": "route",
        "type": "branch",
        "title": "Route the order",
        "cases": [{"when": "amount > 5000", "next": "big"}],
        "default": "small",
    }
    lane = {"nodes": [route, write("small", ledger, next="end"), write("big", ledger)]}
    spec = {
        "slug": "orders",
        "title": "Orders",
        "mode": "autonomous",
        "inputs": {"type": "object", "properties": {"amount": {"type": "number"}}},
        "plan": {
            "nodes": [
                {
                    "id": "both",
                    "type": "parallel",
                    "branches": [lane, {"nodes": [write("hr", ledger)]}],
                }
            ]
        },
    }
    workflow = workflow_create(raw_spec=spec, actor=operator)
    run = advance(run_create(workflow=workflow, requester=operator, context={}))
    assert run.status == RunStatus.WAITING, run.error
    (request,) = pending(run)
    assert request.node_path == "both/0/route"
    assert request.title == "Route the order: a value is missing"
    assert request.description == "Supply amount to decide the branch."
    assert request.fields["properties"]["amount"]["type"] == "number"
    assert request.fields["required"] == ["amount"]
    approval_decide(
        request_id=request.pk, actor=reviewer, decision="approve", values={"amount": 9000}
    )
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert sorted(lines(ledger)) == ["big", "hr"]
    assert verify_all() == []
