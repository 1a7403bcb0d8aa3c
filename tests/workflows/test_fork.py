"""Fork and replay: state at any event from the events; a new run from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.services import token_create
from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from tests.api.conftest import Api
from workflows.engine import run_advance
from workflows.events import verify_all
from workflows.forks import run_fork
from workflows.models import Event, Run
from workflows.plans import PlanInvalid
from workflows.replay import replay, state_at
from workflows.services import run_create
from workflows.states import RunStatus, StepStatus

pytestmark = pytest.mark.django_db


def plan(ledger: Path) -> dict:
    def append(node_id: str, line: str, key: str) -> dict:
        return {
            "id": node_id,
            "action": "test.ledger_append",
            "params": {"ledger": str(ledger), "line": line},
            "outputs": {key: "line"},
        }

    return {
        "nodes": [
            append("one", "{{ who }} one", "first"),
            {"id": "gate", "type": "approval", "title": "Go on for {{ who }}?"},
            {
                "id": "ask",
                "type": "input",
                "title": "Where?",
                "fields": {"place": {"type": "string"}},
            },
            append("two", "{{ who }} two at {{ place }}", "second"),
        ]
    }


def seq_of(run: Run, type_: str, nth: int = 0) -> int:
    return list(
        Event.objects.filter(run=run, type=type_).order_by("seq").values_list("seq", flat=True)
    )[nth]


def finished_run(tmp_path: Path, operator, reviewer) -> Run:  # type: ignore[no-untyped-def]
    run = run_create(
        plan=plan(tmp_path / "ledger"),
        context={"who": "ada"},
        mode="autonomous",
        requester=operator,
    )
    run_advance(run_id=run.pk)
    gate = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    approval_decide(request_id=gate.pk, actor=reviewer, decision="approve")
    run_advance(run_id=run.pk)
    ask = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    approval_decide(
        request_id=ask.pk, actor=reviewer, decision="approve", values={"place": "paris"}
    )
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_replay_ends_where_the_projection_is(tmp_path: Path, operator, reviewer) -> None:
    run = finished_run(tmp_path, operator, reviewer)

    states = replay(run)

    assert [s.seq for s in states] == list(range(1, run.last_seq + 1))
    last = states[-1]
    assert (last.status, last.context, last.position) == (run.status, run.context, run.position)
    at_gate = state_at(run, seq_of(run, "run.paused", 0))
    assert at_gate.status == RunStatus.WAITING and at_gate.current_node == "gate"
    assert at_gate.context == {"who": "ada", "first": "ada one"}


def test_fork_mid_approval_reruns_nothing_done_and_pauses_again(
    tmp_path: Path, operator, reviewer
) -> None:
    run = finished_run(tmp_path, operator, reviewer)
    ledger = tmp_path / "ledger"
    assert ledger.read_text().splitlines() == ["ada one", "ada two at paris"]

    child = run_fork(
        run_id=run.pk, at_seq=seq_of(run, "run.paused", 0), context={"who": "bob"}, actor=operator
    )

    assert child.parent_id == run.pk and child.position == 1
    assert child.context == {"who": "bob", "first": "ada one"}
    carried = child.steps.get()
    assert (carried.node_id, carried.status, carried.output["line"]) == (
        "one",
        StepStatus.SUCCEEDED,
        "ada one",
    )
    run_advance(run_id=child.pk)
    child.refresh_from_db()
    assert child.status == RunStatus.WAITING and child.current_node == "gate"
    assert ledger.read_text().splitlines() == ["ada one", "ada two at paris"]  # no re-run
    assert Event.objects.filter(run=run, type="run.forked").get().data["child"] == child.pk
    assert Event.objects.get(run=child, seq=1).data["forked_from"] == {
        "run": run.pk,
        "seq": seq_of(run, "run.paused", 0),
    }
    assert verify_all() == []


def test_fork_after_an_input_keeps_the_values_and_finishes(
    tmp_path: Path, operator, reviewer
) -> None:
    run = finished_run(tmp_path, operator, reviewer)
    resumed = seq_of(run, "run.resumed", 1)

    child = run_fork(run_id=run.pk, at_seq=resumed, context={"place": "rome"}, actor=operator)
    run_advance(run_id=child.pk)
    child.refresh_from_db()

    assert child.status == RunStatus.SUCCEEDED
    assert child.context["second"] == "ada two at rome"
    assert (tmp_path / "ledger").read_text().splitlines()[-1] == "ada two at rome"
    assert [s.node_id for s in child.steps.order_by("id")] == ["one", "two"]


def test_fork_at_the_start_runs_everything_again(tmp_path: Path, operator, reviewer) -> None:
    run = finished_run(tmp_path, operator, reviewer)

    child = run_fork(run_id=run.pk, at_seq=1, actor=operator)
    run_advance(run_id=child.pk)
    child.refresh_from_db()

    assert child.context == {"who": "ada", "first": "ada one"}
    assert child.status == RunStatus.WAITING and child.current_node == "gate"
    assert child.steps.count() == 1 and child.steps.get().evidence.get("carried_from") is None


def test_a_fork_of_a_fork_replays_from_its_own_start(tmp_path: Path, operator, reviewer) -> None:
    run = finished_run(tmp_path, operator, reviewer)
    child = run_fork(run_id=run.pk, at_seq=seq_of(run, "run.paused", 1), actor=operator)
    grandchild = run_fork(run_id=child.pk, at_seq=1, context={"place": "oslo"}, actor=operator)

    assert grandchild.position == child.position == 2
    assert grandchild.context == {"who": "ada", "first": "ada one", "place": "oslo"}
    assert grandchild.steps.get().node_id == "one"


def test_fork_points_outside_the_log_are_refused(tmp_path: Path, operator, reviewer) -> None:
    run = finished_run(tmp_path, operator, reviewer)
    for seq in (0, run.last_seq + 1):
        with pytest.raises(PlanInvalid) as caught:
            run_fork(run_id=run.pk, at_seq=seq, actor=operator)
        assert caught.value.errors[0].field == "at_seq"
    assert Run.objects.count() == 1


def test_fork_over_the_api(tmp_path: Path, operator, reviewer) -> None:
    run = finished_run(tmp_path, operator, reviewer)
    api = Api(token_create(user=operator, name="ci").plain)

    response = api.post(f"/runs/{run.pk}/fork", {"at_seq": seq_of(run, "run.paused", 0)})
    assert response.status_code == 201, response.json()
    assert response.json()["parent"] == run.pk
    assert api.get(f"/runs/{run.pk}").json()["forks"] == [response.json()["id"]]

    bad = api.post(f"/runs/{run.pk}/fork", {"at_seq": 9999})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "at_seq"
    extra = api.post(f"/runs/{run.pk}/fork", {"at_seq": 1, "spice": True})
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "spice"
