"""Blocks inside blocks, and the decisions of gates inside a map.

A `parallel` or `map` may sit in a parallel branch or a map's body, at any
depth; its lanes' node paths name every level (`hires[1]/setup/0/hr`).
Driven in-process by the real engine: every action runs in a real
subprocess, several at once, and the ledger they write shows what ran.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from tests.support.runs import advance
from workflows import executor_config
from workflows.events import verify_all
from workflows.models import Event, Run
from workflows.plans import validate_plan
from workflows.services import run_create
from workflows.states import RunStatus, StepStatus

pytestmark = pytest.mark.django_db


def pending(run: Run) -> list[ApprovalRequest]:
    return sorted(
        ApprovalRequest.objects.filter(run=run, status=RequestStatus.PENDING),
        key=lambda r: r.node_path,
    )


def write(node_id: str, ledger: Path, line: str | None = None, **extra: object) -> dict:
    return {
        "id": node_id,
        "action": "test.ledger_append",
        "params": {"ledger": str(ledger), "line": line or node_id},
        **extra,
    }


def meet(node_id: str, ledger: Path, count: int) -> dict:
    """An action that ends only once `count` such actions have started."""
    return {
        "id": node_id,
        "action": "test.meet",
        "params": {"ledger": str(ledger), "count": count},
    }


def lines(ledger: Path) -> list[str]:
    return ledger.read_text().splitlines() if ledger.exists() else []


def start(plan: dict, operator, context: dict | None = None) -> Run:  # type: ignore[no-untyped-def]
    return run_create(mode="autonomous", requester=operator, plan=plan, context=context or {})


def errors_of(plan: dict, **kwargs: object) -> list[tuple[str, str, str]]:
    found = validate_plan(
        plan, registry=executor_config.registry(), policy=executor_config.policy(), **kwargs
    )
    return [(e.node, e.field, e.message) for e in found]


def onboarding(ledger: Path, hr: dict, it: dict, **map_extra: object) -> dict:
    """A map over hires whose body runs HR and IT in a parallel block, then the laptop."""
    return {
        "nodes": [
            {
                "id": "hires",
                "type": "map",
                "items": "{{ people }}",
                "as": "hire",
                "results": "onboarded",
                **map_extra,
                "nodes": [
                    {
                        "id": "setup",
                        "type": "parallel",
                        "branches": [{"nodes": [hr]}, {"nodes": [it]}],
                    },
                    write(
                        "laptop",
                        ledger,
                        "laptop {{ hr_id }} {{ it_login }}",
                        outputs={"laptop": "line"},
                    ),
                ],
            },
            write("after", ledger, "after"),
        ]
    }


def test_a_parallel_block_inside_a_map_runs_every_lane_at_once(tmp_path: Path, operator) -> None:
    """Two items, each with two branches: all four actions are in flight together."""
    ledger = tmp_path / "ledger"
    hr = {**meet("hr", ledger, 4), "outputs": {"hr_met": "met"}}
    it = {**meet("it", ledger, 4), "outputs": {"it_met": "met"}}
    plan = onboarding(ledger, hr, it, max_concurrency=2)
    plan["nodes"][0]["nodes"][1] = write("laptop", ledger, "laptop {{ hire }}")
    run = advance(start(plan, operator, {"people": ["ada", "bob"]}))
    assert run.status == RunStatus.SUCCEEDED, run.error
    seen = lines(ledger)
    starts = [i for i, line in enumerate(seen) if line.startswith("start")]
    ends = [i for i, line in enumerate(seen) if line.startswith("end")]
    assert len(starts) == 4 and max(starts) < min(ends), seen
    paths = sorted(run.steps.values_list("node_path", flat=True))
    assert paths == [
        "after",
        "hires[0]/laptop",
        "hires[0]/setup/0/hr",
        "hires[0]/setup/1/it",
        "hires[1]/laptop",
        "hires[1]/setup/0/hr",
        "hires[1]/setup/1/it",
    ]
    # Each idempotency key names the whole path: items never share one.
    keys = set(run.steps.values_list("idempotency_key", flat=True))
    assert f"run{run.pk}-hires[1]/setup/0/hr-v1" in keys
    # The branches' outputs went to their item, and the results in item order.
    assert run.context["onboarded"] == [
        {"hr_met": 4, "it_met": 4},
        {"hr_met": 4, "it_met": 4},
    ]
    assert "hr_met" not in run.context
    started = Event.objects.filter(run=run, type="block.started")
    assert sorted(e.data["node_path"] for e in started) == [
        "hires",
        "hires[0]/setup",
        "hires[1]/setup",
    ]
    assert verify_all() == []


def test_nested_lanes_share_the_runs_parallelism(tmp_path: Path, operator, settings) -> None:
    """Four ready actions at two levels, two runners: never more than two at once, all run."""
    settings.AGENTOS_RUN_PARALLELISM = 2
    ledger = tmp_path / "ledger"

    def nap(node_id: str) -> dict:
        return {
            "id": node_id,
            "action": "test.sleep",
            "params": {"seconds": 0.3, "ledger": str(ledger)},
        }

    plan = onboarding(ledger, nap("hr"), nap("it"), max_concurrency=2)
    plan["nodes"][0]["nodes"][1] = write("laptop", ledger, "laptop {{ hire }}")
    run = advance(start(plan, operator, {"people": ["ada", "bob"]}))
    assert run.status == RunStatus.SUCCEEDED, run.error
    flying, most = 0, 0
    for line in lines(ledger):
        flying += 1 if line.startswith("start ") else -1 if line.startswith("end ") else 0
        most = max(most, flying)
    # Never more than the run's runners (the first test shows four at once
    # with the default of 4); the others waited their turn and then ran.
    assert 1 <= most <= 2, "|".join(lines(ledger))
    assert sum(1 for line in lines(ledger) if line.startswith("end ")) == 4


def test_branches_outputs_reach_the_items_later_nodes(tmp_path: Path, operator) -> None:
    ledger = tmp_path / "ledger"
    hr = write("hr", ledger, "hr-{{ hire }}", outputs={"hr_id": "line"})
    it = write("it", ledger, "it-{{ hire }}", outputs={"it_login": "line"})
    run = advance(start(onboarding(ledger, hr, it), operator, {"people": ["ada", "bob", "cy"]}))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [r["laptop"] for r in run.context["onboarded"]] == [
        f"laptop hr-{p} it-{p}" for p in ("ada", "bob", "cy")
    ]
    assert lines(ledger)[-1] == "after"


def test_a_gate_in_a_nested_branch_pauses_only_its_lane(
    tmp_path: Path, operator, reviewer
) -> None:
    ledger = tmp_path / "ledger"
    hr = write("hr", ledger, "hr {{ hire }}", outputs={"hr_id": "line"})
    plan = onboarding(ledger, hr, {})
    plan["nodes"][0]["nodes"][0]["branches"][1] = {
        "nodes": [
            {"id": "ok", "type": "approval", "title": "Accounts for {{ hire }}?"},
            write("it", ledger, "it {{ hire }}", outputs={"it_login": "line"}),
        ]
    }
    run = advance(start(plan, operator, {"people": ["ada", "bob"]}))
    # Both items' HR branches ran; each item's IT branch waits for its own gate.
    assert run.status == RunStatus.WAITING
    assert sorted(lines(ledger)) == ["hr ada", "hr bob"]
    requests = pending(run)
    assert [r.node_path for r in requests] == ["hires[0]/setup/1/ok", "hires[1]/setup/1/ok"]
    assert [r.title for r in requests] == ["Accounts for ada?", "Accounts for bob?"]
    # Each request binds its own item's action, by its nested path.
    assert [(g["path"], g["params"]["line"]) for r in requests for g in r.guards] == [
        ("hires[0]/setup/1/it", "it ada"),
        ("hires[1]/setup/1/it", "it bob"),
    ]
    paused = Event.objects.filter(run=run, type="run.paused").last()
    assert sorted(paused.data["waiting"]) == ["hires[0]/setup/1/ok", "hires[1]/setup/1/ok"]
    from workflows.selectors import run_detail

    detail = run_detail(run)
    assert sorted(detail["active_nodes"]) == ["hires[0]/setup/1/ok", "hires[1]/setup/1/ok"]
    assert detail["node_states"]["hires[0]/setup/0/hr"] == "done"
    assert detail["node_states"]["hires[1]/setup/1/ok"] == "waiting"
    assert detail["node_states"]["hires[1]/setup"] == "waiting"  # the nested block itself

    approval_decide(request_id=requests[1].pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.WAITING
    assert lines(ledger)[2:] == ["it bob", "laptop hr bob it bob"]
    approval_decide(request_id=requests[0].pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger)[4:] == ["it ada", "laptop hr ada it ada", "after"]
    assert verify_all() == []


def test_a_failure_in_a_nested_lane_cancels_the_rest(tmp_path: Path, operator) -> None:
    ledger = tmp_path / "ledger"
    hr = {
        "id": "hr",
        "action": "test.sleep",
        "params": {"seconds": 60, "ledger": str(ledger)},
    }
    it = {"id": "it", "action": "test.fail", "params": {"message": "no accounts today"}}
    run = advance(start(onboarding(ledger, hr, it), operator, {"people": ["ada"]}))
    assert run.status == RunStatus.FAILED
    assert "hires[0]/setup/1/it" in run.error and "no accounts today" in run.error
    assert run.steps.get(node_id="hr").status == StepStatus.CANCELLED
    assert not any(line.startswith("end") for line in lines(ledger))
    assert "after" not in lines(ledger)


def test_a_map_inside_a_parallel_branch_and_a_gate_before_it(
    tmp_path: Path, operator, reviewer
) -> None:
    """A gate before the outer block binds the nested map's items' first actions."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {"id": "go", "type": "approval", "title": "Go?"},
            {
                "id": "work",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {
                                "id": "each",
                                "type": "map",
                                "items": "{{ things }}",
                                "as": "thing",
                                "results": "done_things",
                                "nodes": [
                                    write("w", ledger, "w {{ thing }}", outputs={"w": "line"})
                                ],
                            }
                        ]
                    },
                    {"nodes": [write("other", ledger)]},
                ],
            },
            write("after", ledger, "after {{ done_things }}"),
        ]
    }
    run = advance(start(plan, operator, {"things": ["a", "b"]}))
    (request,) = pending(run)
    assert sorted(g["path"] for g in request.guards) == [
        "work/0/each[0]/w",
        "work/0/each[1]/w",
        "work/1/other",
    ]
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.context["done_things"] == [{"w": "w a"}, {"w": "w b"}]
    assert sorted(lines(ledger)[:3]) == ["other", "w a", "w b"]
    # No gate asked again: the approval covered each nested path.
    assert not ApprovalRequest.objects.filter(run=run, state__purpose="gate_again").exists()
    assert verify_all() == []


def test_a_changed_value_behind_a_gate_asks_again_for_the_nested_path(
    tmp_path: Path, operator, reviewer
) -> None:
    """What was approved is what runs, at every depth: a change asks the gate again."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {"id": "go", "type": "approval", "title": "Go?"},
            {
                "id": "outer",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {
                                "id": "inner",
                                "type": "parallel",
                                "branches": [{"nodes": [write("w", ledger, "{{ word }}")]}],
                            }
                        ]
                    }
                ],
            },
        ]
    }
    run = advance(start(plan, operator, {"word": "hello"}))
    (request,) = pending(run)
    assert [(g["path"], g["params"]["line"]) for g in request.guards] == [
        ("outer/0/inner/0/w", "hello")
    ]
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run.refresh_from_db()
    Run.objects.filter(pk=run.pk).update(context={"word": "changed"})
    run = advance(run)
    assert run.status == RunStatus.WAITING
    assert lines(ledger) == []
    (again,) = pending(run)
    assert again.node_path == "outer/0/inner/0/w" and again.purpose == "gate_again"
    assert Event.objects.filter(run=run, type="approval.digest_mismatch").exists()
    approval_decide(request_id=again.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger) == ["changed"]


def test_validation_checks_every_depth(tmp_path: Path) -> None:
    """Paths, out-of-block next and conflicting outputs, inside nested blocks."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "hires",
                "type": "map",
                "items": "{{ people }}",
                "as": "hire",
                "nodes": [
                    {
                        "id": "setup",
                        "type": "parallel",
                        "branches": [
                            {"nodes": [write("hr", ledger, outputs={"emp": "line"}, next="out")]},
                            {"nodes": [write("it", ledger, outputs={"emp": "line"})]},
                        ],
                    },
                    write("laptop", ledger, "{{ emp }}"),
                ],
            },
            write("out", ledger),
        ]
    }
    found = errors_of(plan)
    fields = {(node, field) for node, field, _ in found}
    assert ("hires/setup/0/hr", "next") in fields  # out of its block, two levels down
    assert ("hires/setup", "branches.1") in fields  # both branches write `emp`
    assert errors_of(plan, inputs_schema={"type": "object", "properties": {"people": {}}}) == [
        e for e in found
    ]
    plan["nodes"][0]["nodes"][0]["branches"][1]["nodes"][0]["outputs"] = {"login": "line"}
    del plan["nodes"][0]["nodes"][0]["branches"][0]["nodes"][0]["next"]
    assert errors_of(plan) == []
    # A stored workflow: a later node of the item reads what each branch wrote.
    schema = {"type": "object", "properties": {"people": {"type": "array"}}}
    plan["nodes"][0]["nodes"][1] = write("laptop", ledger, "{{ emp }} {{ login }}")
    assert errors_of(plan, inputs_schema=schema, stored=True) == []
    plan["nodes"][0]["nodes"][1] = write("laptop", ledger, "{{ nobody }}")
    assert [e[:2] for e in errors_of(plan, inputs_schema=schema, stored=True)] == [
        ("hires/laptop", "params.line")
    ]


def test_the_time_machine_shows_nested_active_paths(tmp_path: Path, operator, reviewer) -> None:
    from workflows.replay import state_at

    ledger = tmp_path / "ledger"
    hr = write("hr", ledger, "hr {{ hire }}", outputs={"hr_id": "line"})
    plan = onboarding(ledger, hr, {})
    plan["nodes"][0]["nodes"][0]["branches"][1] = {
        "nodes": [{"id": "ok", "type": "approval", "title": "Accounts?"}]
    }
    plan["nodes"][0]["nodes"][1] = write("laptop", ledger, "laptop {{ hire }}")
    run = advance(start(plan, operator, {"people": ["ada"]}))
    paused = state_at(run, Event.objects.get(run=run, type="run.paused").seq)
    assert paused.block == "hires" and paused.active == ["hires[0]/setup/1/ok"]
    (request,) = pending(run)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    inner = Event.objects.get(run=run, type="block.finished", data__node_path="hires[0]/setup")
    assert state_at(run, inner.seq).active == []
    laptop = Event.objects.get(run=run, type="step.started", data__node="laptop")
    assert state_at(run, laptop.seq).active == ["hires[0]/laptop"]
    end = state_at(run, run.last_seq)
    assert end.status == RunStatus.SUCCEEDED and end.block == ""


def test_a_block_entered_again_gives_its_steps_new_visits_and_keys(
    tmp_path: Path, operator, reviewer
) -> None:
    """A rejection jumps back to a block (top level and nested): no step reuses a key."""
    ledger = tmp_path / "ledger"
    inner = {
        "id": "inner",
        "type": "parallel",
        "max_visits": 2,
        "branches": [{"nodes": [write("w", ledger, "w {{ person }}")]}],
    }
    gate = {"id": "ok", "type": "approval", "title": "Again?", "on_reject": "inner"}
    plan = {
        "nodes": [
            {
                "id": "each",
                "type": "map",
                "items": "{{ people }}",
                "as": "person",
                "nodes": [inner, gate],
            },
            {**inner, "id": "top", "branches": [{"nodes": [write("t", ledger, "top")]}]},
            {**gate, "id": "top_ok", "on_reject": "top"},
        ]
    }
    run = advance(start(plan, operator, {"people": ["ada"]}))
    (request,) = pending(run)
    approval_decide(request_id=request.pk, actor=reviewer, decision="reject", comment="again")
    run = advance(run)
    (request,) = pending(run)
    assert request.node_path == "each[0]/ok"
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run = advance(run)
    (request,) = pending(run)
    approval_decide(request_id=request.pk, actor=reviewer, decision="reject", comment="again")
    run = advance(run)
    (request,) = pending(run)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger) == ["w ada", "w ada", "top", "top"]
    steps = list(run.steps.order_by("id").values_list("node_path", "visit", "idempotency_key"))
    assert [(p, v) for p, v, _ in steps] == [
        ("each[0]/inner/0/w", 1),
        ("each[0]/inner/0/w", 2),
        ("top/0/t", 1),
        ("top/0/t", 2),
    ]
    keys = [k for _, _, k in steps]
    assert len(set(keys)) == 4, keys
    assert all(s.attempt == 1 for s in run.steps.all())


# --- decisions of gates inside a map --------------------------------------------


def test_each_item_reads_its_own_decision_and_the_map_lists_them(
    tmp_path: Path, operator, reviewer
) -> None:
    """Inside the item `decisions.ok` is that item's; after the map, a list in item order."""
    from workflows.replay import state_at
    from workflows.selectors import run_detail

    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "orders",
                "type": "map",
                "items": "{{ people }}",
                "as": "person",
                "nodes": [
                    {
                        "id": "ok",
                        "type": "approval",
                        "title": "Order for {{ person }}?",
                        "on_reject": "skip",
                    },
                    {
                        "id": "check",
                        "type": "branch",
                        "cases": [
                            {"when": "decisions.ok.comment == 'ok ' + person", "next": "order"}
                        ],
                        "default": "odd",
                    },
                    write("order", ledger, "{{ person }}", next="end"),
                    write("odd", ledger, "odd {{ person }}", next="end"),
                    write("skip", ledger, "skip {{ person }}"),
                ],
            },
            {
                "id": "route",
                "type": "branch",
                "cases": [{"when": "decisions.ok[0].decision == 'approve'", "next": "yes"}],
                "default": "no",
            },
            write("yes", ledger, next="end"),
            write("no", ledger),
        ]
    }
    run = advance(start(plan, operator, {"people": ["ada", "bob", "cy"]}))
    requests = pending(run)
    assert [r.node_path for r in requests] == ["orders[0]/ok", "orders[1]/ok", "orders[2]/ok"]
    approval_decide(request_id=requests[2].pk, actor=reviewer, decision="approve", comment="ok cy")
    approval_decide(
        request_id=requests[0].pk, actor=reviewer, decision="approve", comment="ok ada"
    )
    approval_decide(request_id=requests[1].pk, actor=reviewer, decision="reject", comment="no")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    # The last decision (bob's rejection) did not leak into the other items.
    assert sorted(lines(ledger)[:3]) == ["ada", "cy", "skip bob"]
    assert lines(ledger)[3:] == ["yes"]
    decided = run.graph["decisions"]["ok"]
    assert [d["decision"] for d in decided] == ["approve", "reject", "approve"]
    assert [d["comment"] for d in decided] == ["ok ada", "no", "ok cy"]
    assert run_detail(run)["decisions"]["ok"][1]["decided_by"] == reviewer.get_username()
    # The API shows the list too (its schema allows it).
    from tests.api.conftest import api_for

    response = api_for(operator).get(f"/runs/{run.pk}")
    assert response.status_code == 200, response.content
    assert [d["comment"] for d in response.json()["decisions"]["ok"]] == ["ok ada", "no", "ok cy"]
    # The time machine agrees: no single item's decision at the top before the map ends.
    finished = Event.objects.get(run=run, type="block.finished")
    assert "ok" not in state_at(run, finished.seq - 1).decisions
    assert [d["decision"] for d in state_at(run, finished.seq).decisions["ok"]] == [
        "approve",
        "reject",
        "approve",
    ]
    assert verify_all() == []


def test_a_gate_in_a_parallel_branch_is_readable_by_the_whole_run(
    tmp_path: Path, operator, reviewer
) -> None:
    """Outside any map a gate decides once: `decisions.<gate>` is its entry, as at the top."""
    ledger = tmp_path / "ledger"
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {"nodes": [{"id": "ok", "type": "approval", "title": "Go?"}]},
                    {"nodes": [write("hr", ledger)]},
                ],
            },
            write("after", ledger, "after {{ decisions.ok.comment }}"),
        ]
    }
    run = advance(start(plan, operator))
    (request,) = pending(run)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve", comment="fine")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger) == ["hr", "after fine"]
    assert run.graph["decisions"]["ok"]["decision"] == "approve"


# --- forks from inside a block ----------------------------------------------------


def test_a_fork_from_inside_nested_blocks_goes_on_from_the_lanes(
    tmp_path: Path, operator, reviewer
) -> None:
    """Completed lane steps are not run again; the fork's gates are asked anew."""
    from workflows.forks import run_fork

    ledger = tmp_path / "ledger"
    hr = write("hr", ledger, "hr {{ hire }}", outputs={"hr_id": "line"})
    plan = onboarding(ledger, hr, {})
    plan["nodes"][0]["nodes"][0]["branches"][1] = {
        "nodes": [
            {"id": "ok", "type": "approval", "title": "Accounts for {{ hire }}?"},
            write("it", ledger, "it {{ hire }}", outputs={"it_login": "line"}),
        ]
    }
    run = advance(start(plan, operator, {"people": ["ada", "bob"]}))
    assert sorted(lines(ledger)) == ["hr ada", "hr bob"]
    paused = Event.objects.filter(run=run, type="run.paused").last()
    fork = run_fork(run_id=run.pk, at_seq=paused.seq, actor=operator)
    lanes = {lane["path"]: lane for lane in fork.graph["block"]["lanes"]}
    assert sorted(lanes) == ["hires[0]", "hires[1]"]
    inner = {lane["path"]: lane for lane in lanes["hires[1]"]["block"]["lanes"]}
    assert inner["hires[1]/setup/0"]["status"] == "done"
    assert lanes["hires[1]"]["outputs"] == {"hr_id": "hr bob"}
    fork = advance(fork)
    assert fork.status == RunStatus.WAITING
    asked = pending(fork)
    assert [r.node_path for r in asked] == ["hires[0]/setup/1/ok", "hires[1]/setup/1/ok"]
    for request in asked:
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    fork = advance(fork)
    assert fork.status == RunStatus.SUCCEEDED, fork.error
    assert sorted(lines(ledger)) == [
        "after",
        "hr ada",  # once: the fork's lanes had moved past it
        "hr bob",
        "it ada",
        "it bob",
        "laptop hr ada it ada",
        "laptop hr bob it bob",
    ]
    assert fork.context["onboarded"][1] == {
        "hr_id": "hr bob",
        "it_login": "it bob",
        "laptop": "laptop hr bob it bob",
    }
    # The parent is untouched: its own gates still wait.
    assert len(pending(run)) == 2
    # The fork's own time machine starts inside the block.
    from workflows.replay import state_at

    first = state_at(fork, 1)
    assert first.block == "hires" and "hires[1]/setup/1" in first.lanes
    assert verify_all() == []


def test_a_fork_asks_about_a_lane_step_that_was_in_flight(
    tmp_path: Path, operator, reviewer
) -> None:
    """A non-idempotent lane step in flight at the fork point goes through fencing."""
    from workflows.forks import run_fork

    ledger = tmp_path / "ledger"
    once = {
        "id": "charge",
        "action": "test.ledger_append_once",
        "params": {"ledger": str(ledger), "line": "charged"},
        "outputs": {"charged": "line"},
    }
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {"nodes": [once]},
                    {"nodes": [write("hr", ledger)]},
                ],
            },
            write("after", ledger, "after {{ charged }}"),
        ]
    }
    run = advance(start(plan, operator))
    assert run.status == RunStatus.SUCCEEDED, run.error
    started = Event.objects.get(run=run, type="step.started", data__node="charge")
    fork = advance(run_fork(run_id=run.pk, at_seq=started.seq, actor=operator))
    assert fork.status == RunStatus.WAITING
    (request,) = pending(fork)
    assert request.node_path == "setup/0/charge" and request.purpose == "unknown_outcome"
    carried = Event.objects.get(run=fork, seq=1).data["in_flight"]["lanes"]
    assert list(carried) == ["setup/0/charge"]
    assert lines(ledger).count("charged") == 1  # not run again blindly
    approval_decide(
        request_id=request.pk,
        actor=reviewer,
        decision="approve",
        resolution="mark_done",
        values={"line": "charged"},
    )
    fork = advance(fork)
    assert fork.status == RunStatus.SUCCEEDED, fork.error
    assert lines(ledger).count("charged") == 1
    assert lines(ledger)[-1] == "after charged"


# --- in real Chromium -------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_nested_run_and_its_requests_in_chromium(  # type: ignore[no-untyped-def]
    daphne, operator, reviewer, superuser, tmp_path, orm, browser
) -> None:
    """The run page draws the block inside the map with live states; a request shows its item's."""
    from django.urls import reverse

    from tests.support.browsers import logged_in

    ledger = tmp_path / "ledger"

    def setup() -> tuple[Run, list[ApprovalRequest]]:
        hr = write("hr", ledger, "hr {{ hire }}", outputs={"hr_id": "line"})
        plan = onboarding(ledger, hr, {})
        plan["nodes"][0]["nodes"][0]["branches"][1] = {
            "nodes": [
                {"id": "ok", "type": "approval", "title": "Accounts for {{ hire }}?"},
                write("it", ledger, "it {{ hire }}", outputs={"it_login": "line"}),
            ]
        }
        run = advance(start(plan, operator, {"people": ["ada", "bob"]}))
        return run, pending(run)

    run, requests = orm(setup)
    page = logged_in(browser, daphne.url, "reviewer")
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"/inbox/requests/{requests[1].pk}/")
        body = page.text_content("body") or ""
        # Its own item's action, with that item's parameters.
        assert "Accounts for bob?" in body and "it bob" in body and "it ada" not in body
        page.screenshot(path=str(tmp_path / f"nested-request-{width}.png"), full_page=True)
    admin = logged_in(browser, daphne.url, superuser.get_username())
    for width, height in ((1280, 800), (390, 844)):
        admin.set_viewport_size({"width": width, "height": height})
        admin.goto(reverse("admin:workflows_run_change", args=[run.pk]))
        setup_box = admin.locator("li.agentos-node[data-node='setup']")
        assert setup_box.is_visible()
        # The parallel block is drawn inside the map's body, with its lanes' states.
        inner = admin.locator("li[data-node='hires'] li[data-node='setup'] li[data-node='hr']")
        assert "state-done" in (inner.get_attribute("class") or "")
        assert "state-waiting" in (setup_box.get_attribute("class") or "")
        gate = admin.locator("li[data-node='setup'] li[data-node='ok']")
        assert "state-waiting" in (gate.get_attribute("class") or "")
        admin.screenshot(path=str(tmp_path / f"nested-run-{width}.png"), full_page=True)
    keep = os.environ.get("AGENTOS_KEEP_SCREENSHOTS")  # a folder to look at them later
    if keep:
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, keep)
