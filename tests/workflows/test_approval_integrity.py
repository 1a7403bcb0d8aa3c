"""Approval integrity: nothing runs that no person approved, by any path.

Issue 10, items 1-5. Each test plays an operator trying to get a guarded
step to run without a person's approval (a fork, a weaker mode, a bare plan,
a flipped workflow flag, a schedule in someone else's name) and checks that
the attempt is refused or asks a person first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from agentos_site.roles import OPERATORS, REVIEWERS, ROLE_PERMISSIONS
from approvals.models import ApprovalRequest
from approvals.services import DecisionRefused, approval_decide
from tests.api.conftest import api_for
from tests.support.fixtures import make_user
from tests.support.runs import advance
from tests.support.runs import pending_request as pending
from workflows.events import verify_all
from workflows.forks import run_fork
from workflows.models import Event, Run, Workflow, WorkflowSchedule
from workflows.plans import PlanInvalid
from workflows.schedules import ScheduleRefused, schedule_problems, schedule_save
from workflows.services import run_create, workflow_create, workflow_update
from workflows.states import RunStatus, StepStatus
from workflows.tasks import start_scheduled_run

pytestmark = pytest.mark.django_db


def seqs(run: Run, type_: str) -> list[int]:
    return list(
        Event.objects.filter(run=run, type=type_).order_by("seq").values_list("seq", flat=True)
    )


@pytest.fixture
def operator_reviewer(roles):  # type: ignore[no-untyped-def]
    """Someone who may both start (and fork) runs and decide requests."""
    user = make_user(roles, "opsrev", OPERATORS)
    user.groups.add(Group.objects.get(name=REVIEWERS))
    return get_user_model().objects.get(pk=user.pk)


# --- 1. forks ---------------------------------------------------------------


def archive_spec(ledger: Path) -> dict:
    """A gate guarding a move of reports to `dest`, then a non-idempotent note."""
    return {
        "slug": "archive-reports",
        "title": "Archive reports",
        "mode": "autonomous",
        "inputs": {
            "type": "object",
            "required": ["dest"],
            "properties": {"dest": {"type": "string"}},
        },
        "plan": {
            "nodes": [
                {
                    "id": "gate",
                    "type": "approval",
                    "title": "Move the reports to {{ dest }}?",
                    "assign_to": REVIEWERS,
                },
                {
                    "id": "move",
                    "action": "files.move_where",
                    "params": {
                        "source_dir": "inbox",
                        "destination_dir": "{{ dest }}",
                        "pattern": "*.pdf",
                    },
                },
                {
                    "id": "note",
                    "action": "test.ledger_append_once",
                    "params": {"ledger": str(ledger), "line": "moved to {{ dest }}"},
                },
            ]
        },
    }


@pytest.fixture
def archived(workspace: Path, tmp_path: Path, operator, reviewer) -> Run:
    """A finished run: a reviewer approved moving the reports to `approved`."""
    (workspace / "inbox").mkdir()
    (workspace / "inbox" / "q3.pdf").write_bytes(b"%PDF q3")
    workflow = workflow_create(raw_spec=archive_spec(tmp_path / "ledger"), actor=operator)
    run = advance(run_create(workflow=workflow, context={"dest": "approved"}, requester=operator))
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (workspace / "approved" / "q3.pdf").exists()
    return run


def test_a_fork_at_any_event_after_the_approval_runs_nothing_unapproved(
    archived: Run, workspace: Path, tmp_path: Path, operator
) -> None:
    """Another destination, forked at every point after the gate: never moved there."""
    ledger = tmp_path / "ledger"
    (workspace / "inbox" / "q4.pdf").write_bytes(b"%PDF q4")
    parent_gate = ApprovalRequest.objects.get(run=archived, node_id="gate")
    decided = seqs(archived, "approval.decided")[0]

    for at_seq in range(decided, archived.last_seq + 1):
        child = advance(
            run_fork(
                run_id=archived.pk, at_seq=at_seq, context={"dest": "elsewhere"}, actor=operator
            )
        )
        where = f"forked at event {at_seq}"
        assert not (workspace / "elsewhere").exists(), where
        assert ledger.read_text().splitlines() == ["moved to approved"], where
        # Completed steps carried over are never run again.
        assert not child.steps.exclude(evidence__has_key="carried_from").exists(), where
        if child.position < len(child.nodes):
            request = pending(child)
            assert child.status == RunStatus.WAITING, where
            assert request.purpose in ("approval_node", "gate_again"), where
            assert request.digest and request.digest != parent_gate.digest, where
            assert {
                g["params"].get("destination_dir") for g in request.guards if g["node"] == "move"
            } <= {"elsewhere"}, where
        else:
            assert child.status == RunStatus.SUCCEEDED, where
    assert verify_all() == []


def test_the_gate_asked_again_binds_the_forks_parameters_and_four_eyes(
    archived: Run, workspace: Path, tmp_path: Path, operator_reviewer, reviewer
) -> None:
    (workspace / "inbox" / "q4.pdf").write_bytes(b"%PDF q4")
    resumed = seqs(archived, "run.resumed")[0]

    child = advance(
        run_fork(
            run_id=archived.pk,
            at_seq=resumed,
            context={"dest": "elsewhere"},
            actor=operator_reviewer,
        )
    )

    request = pending(child)
    assert (child.status, child.current_node) == (RunStatus.WAITING, "move")
    assert (request.purpose, request.state) == ("gate_again", {"gate": "gate"})
    assert request.title == "Move the reports to elsewhere?"
    assert request.assigned_group.name == REVIEWERS
    assert [(g["node"], g["params"].get("destination_dir")) for g in request.guards] == [
        ("move", "elsewhere"),
        ("note", None),
    ]
    assert request.guards[1]["params"]["line"] == "moved to elsewhere"
    asked = Event.objects.get(run=child, type="approval.asked_again")
    assert asked.data["gate"] == "gate" and asked.data["forked_from"] == archived.pk
    # The person who forked is the fork's requester: four-eyes holds against them.
    with pytest.raises(DecisionRefused, match="four-eyes"):
        approval_decide(request_id=request.pk, actor=operator_reviewer, decision="approve")

    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    child = advance(child)

    assert child.status == RunStatus.SUCCEEDED, child.error
    assert (workspace / "elsewhere" / "q4.pdf").exists()
    assert (tmp_path / "ledger").read_text().splitlines() == [
        "moved to approved",
        "moved to elsewhere",
    ]
    assert ApprovalRequest.objects.filter(run=child).count() == 1


def test_a_fork_without_changes_does_not_repeat_an_approved_step_unasked(
    archived: Run, tmp_path: Path, operator, reviewer
) -> None:
    """Forked while the non-idempotent note was in flight: a person decides again."""
    ledger = tmp_path / "ledger"
    in_flight = [
        s
        for s in seqs(archived, "step.started")
        if Event.objects.get(run=archived, seq=s).data["node"] == "note"
    ][0]

    child = advance(run_fork(run_id=archived.pk, at_seq=in_flight, actor=operator))

    assert child.status == RunStatus.WAITING and child.current_node == "note"
    assert ledger.read_text().splitlines() == ["moved to approved"]
    move = child.steps.get(node_id="move")
    assert move.evidence["carried_from"]["run"] == archived.pk
    request = pending(child)
    assert [g["node"] for g in request.guards] == ["note"]
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    # The note was in flight in the parent: did it happen? A person answers.
    child = advance(child)
    unknown = pending(child)
    assert unknown.purpose == "unknown_outcome"
    assert ledger.read_text().splitlines() == ["moved to approved"]
    approval_decide(request_id=unknown.pk, actor=reviewer, decision="approve", resolution="retry")
    child = advance(child)
    assert child.status == RunStatus.SUCCEEDED
    assert ledger.read_text().splitlines() == ["moved to approved", "moved to approved"]
    assert child.steps.get(node_id="move").pk == move.pk  # never re-run


def test_a_fork_with_a_non_idempotent_step_in_flight_asks_whether_it_happened(
    operator, reviewer, tmp_path: Path
) -> None:
    """No gate at all: the step may have happened in the parent, so a person says."""
    ledger = tmp_path / "ledger"
    run = advance(
        run_create(
            plan={
                "nodes": [
                    {
                        "id": "note",
                        "action": "test.ledger_append_once",
                        "params": {"ledger": str(ledger), "line": "{{ line }}"},
                    }
                ]
            },
            context={"line": "paid"},
            mode="autonomous",
            requester=operator,
        )
    )
    assert run.status == RunStatus.SUCCEEDED

    child = advance(run_fork(run_id=run.pk, at_seq=seqs(run, "step.started")[0], actor=operator))

    assert child.status == RunStatus.WAITING
    asked = pending(child)
    assert asked.purpose == "unknown_outcome"
    assert ledger.read_text().splitlines() == ["paid"]
    carried = child.steps.get()
    assert carried.status == StepStatus.UNKNOWN
    assert carried.evidence["carried_from"]["run"] == run.pk
    assert Event.objects.get(run=child, seq=1).data["in_flight"]["step"] == carried.pk
    approval_decide(
        request_id=asked.pk, actor=reviewer, decision="approve", resolution="mark_done"
    )
    assert advance(child).status == RunStatus.SUCCEEDED
    assert ledger.read_text().splitlines() == ["paid"]


def test_a_fork_through_the_api_asks_the_gate_again_of_someone_else(
    archived: Run, workspace: Path, superuser, reviewer
) -> None:
    admin_api = api_for(superuser)
    resumed = seqs(archived, "run.resumed")[0]

    forked = admin_api.post(
        f"/runs/{archived.pk}/fork", {"at_seq": resumed, "context": {"dest": "elsewhere"}}
    )
    assert forked.status_code == 201, forked.content
    child = advance(Run.objects.get(pk=forked.json()["id"]))
    request = pending(child)

    refused = admin_api.post(f"/approvals/{request.pk}/decision", {"decision": "approve"})
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]
    assert not (workspace / "elsewhere").exists()
    shown = api_for(reviewer).get(f"/approvals/{request.pk}").json()
    assert shown["digest"] == request.digest


def test_a_fork_of_a_reviewed_bare_plan_is_reviewed_again(
    workspace: Path, operator, reviewer
) -> None:
    plan = {
        "nodes": [{"id": "risky", "action": "test.risky", "params": {"target": "{{ target }}"}}]
    }
    run = advance(
        run_create(plan=plan, context={"target": "a"}, mode="autonomous", requester=operator)
    )
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    assert advance(run).status == RunStatus.SUCCEEDED

    child = advance(
        run_fork(
            run_id=run.pk,
            at_seq=seqs(run, "run.resumed")[0],
            context={"target": "b"},
            actor=operator,
        )
    )

    assert child.status == RunStatus.WAITING and not child.steps.exists()
    assert pending(child).purpose == "plan_review"
    assert Event.objects.get(run=child, seq=1).data["review_plan"] is True


def test_parameters_changed_behind_a_gate_go_back_to_the_gates_own_group(
    operator, reviewer, roles, tmp_path: Path
) -> None:
    """An earlier guarded step rewrites a value: the gate's group and quorum decide again."""
    finance = [make_user(roles, f"fin{i}", REVIEWERS) for i in (1, 2)]
    group = Group.objects.create(name="Finance")
    for user in finance:
        user.groups.add(group)
    ledger = str(tmp_path / "ledger")
    run = advance(
        run_create(
            plan={
                "nodes": [
                    {
                        "id": "gate",
                        "type": "approval",
                        "title": "Pay {{ line }}?",
                        "assign_to": "Finance",
                        "quorum": 2,
                    },
                    {
                        "id": "a",
                        "action": "test.ledger_append",
                        "params": {"ledger": ledger, "line": "{{ line }}-a"},
                        "outputs": {"line": "line"},
                    },
                    {
                        "id": "b",
                        "action": "test.ledger_append",
                        "params": {"ledger": ledger, "line": "{{ line }}"},
                    },
                ]
            },
            context={"line": "10"},
            mode="autonomous",
            requester=operator,
        )
    )
    for user in finance:
        approval_decide(request_id=pending(run).pk, actor=user, decision="approve")

    run = advance(run)

    assert (run.status, run.current_node) == (RunStatus.WAITING, "b")
    again = pending(run)
    assert (again.purpose, again.state) == ("gate_again", {"gate": "gate"})
    assert (again.assigned_group.name, again.quorum) == ("Finance", 2)
    assert again.guards[0]["params"]["line"] == "10-a"
    with pytest.raises(DecisionRefused, match="assigned to Finance"):
        approval_decide(request_id=again.pk, actor=reviewer, decision="approve")
    assert Path(ledger).read_text().splitlines() == ["10-a"]


# --- 2. modes ---------------------------------------------------------------


ASSISTED_SPEC = {
    "slug": "cleanup-assisted",
    "title": "Clean up (assisted)",
    "mode": "assisted",
    "inputs": {
        "type": "object",
        "required": ["target"],
        "properties": {"target": {"type": "string"}},
    },
    "plan": {
        "nodes": [{"id": "risky", "action": "test.risky", "params": {"target": "{{ target }}"}}]
    },
}


@pytest.fixture
def assisted(operator) -> Workflow:
    return workflow_create(raw_spec=ASSISTED_SPEC, actor=operator)


def test_the_api_refuses_a_mode_weaker_than_the_workflows(assisted, operator) -> None:
    api = api_for(operator)

    weaker = api.post(
        "/runs", {"workflow": assisted.slug, "context": {"target": "x"}, "mode": "autonomous"}
    )

    assert weaker.status_code == 400
    assert [e["field"] for e in weaker.json()["errors"]] == ["mode"]
    assert "assisted" in weaker.json()["errors"][0]["message"]
    assert not Run.objects.exists()
    stricter = api.post(
        "/runs", {"workflow": assisted.slug, "context": {"target": "x"}, "mode": "interactive"}
    )
    assert stricter.status_code == 201 and stricter.json()["mode"] == "interactive"
    default = api.post("/runs", {"workflow": assisted.slug, "context": {"target": "y"}})
    assert default.status_code == 201 and default.json()["mode"] == "assisted"
    # The weaker mode never ran the risky action unasked.
    run = advance(Run.objects.get(pk=default.json()["id"]))
    assert run.status == RunStatus.WAITING and pending(run).purpose == "mode_gate"


def test_the_admin_start_form_neither_offers_nor_accepts_a_weaker_mode(
    assisted, operator, client
) -> None:
    client.force_login(operator)
    url = f"/admin/workflows/workflow/{assisted.pk}/start/"

    page = client.get(url).content.decode()
    assert 'value="assisted"' in page and 'value="interactive"' in page
    assert 'value="autonomous"' not in page
    forged = client.post(url, {"target": "x", "run-mode": "autonomous"})

    assert forged.status_code == 200
    assert "never a weaker mode" in forged.content.decode()
    assert not Run.objects.exists()
    assert client.post(url, {"target": "x", "run-mode": "interactive"}).status_code == 302
    assert Run.objects.get().mode == "interactive"


def test_batches_schedules_and_the_command_refuse_a_weaker_mode(
    assisted, operator, client
) -> None:
    api = api_for(operator)
    batch = api.post(
        "/runs/batch", {"workflow": assisted.slug, "rows": [{"target": "x"}], "mode": "autonomous"}
    )
    assert batch.status_code == 400 and batch.json()["errors"][0]["field"] == "mode"
    client.force_login(operator)
    form = client.post(
        f"/admin/workflows/workflow/{assisted.pk}/batch/",
        {"rows_json": '[{"target": "x"}]', "mode": "autonomous"},
    )
    assert form.status_code == 200 and "mode" in form.context["form"].errors
    schedule = WorkflowSchedule(
        name="nightly",
        workflow=assisted,
        kind="cron",
        cron="0 3 * * *",
        context={"target": "x"},
        mode="autonomous",
    )
    assert "never a weaker mode" in schedule_problems(schedule)["mode"]
    added = client.post(
        "/admin/workflows/workflowschedule/add/",
        {
            "name": "nightly",
            "workflow": assisted.pk,
            "kind": "cron",
            "cron": "0 3 * * *",
            "context": '{"target": "x"}',
            "mode": "autonomous",
            "enabled": "on",
        },
    )
    assert added.status_code == 200 and "mode" in added.context["adminform"].form.errors
    with pytest.raises(CommandError, match="mode"):
        call_command(
            "start_run",
            "--workflow",
            assisted.slug,
            "--set",
            "target=x",
            "--mode",
            "autonomous",
            "--as",
            operator.username,
        )
    assert not Run.objects.exists() and not WorkflowSchedule.objects.exists()


# --- 3. bare plans ----------------------------------------------------------


def cleanup_plan(**params: Any) -> dict:
    return {
        "nodes": [{"id": "clean", "action": "files.cleanup", "params": {"path": "work", **params}}]
    }


@pytest.mark.parametrize("pattern", ["?*", "[!x]*", "**", "*", "*.*", "*.pdf", "a/*.tmp"])
def test_cleanup_patterns_outside_the_allow_list_are_refused(
    workspace: Path, operator, pattern: str
) -> None:
    (workspace / "work").mkdir()
    (workspace / "work" / "keep.pdf").write_bytes(b"%PDF")
    with pytest.raises(PlanInvalid) as caught:
        run_create(
            plan=cleanup_plan(temp_patterns=[pattern]), mode="autonomous", requester=operator
        )
    assert [(e.node, e.field) for e in caught.value.errors] == [("clean", "params.temp_patterns")]
    assert "not a name pattern for temporary files" in caught.value.errors[0].message
    assert not Run.objects.exists()
    assert (workspace / "work" / "keep.pdf").exists()


def test_a_risky_bare_plan_waits_for_someone_else_in_every_mode(
    workspace: Path, superuser, reviewer
) -> None:
    work = workspace / "work"
    work.mkdir()
    (work / "keep.pdf").write_bytes(b"%PDF")
    (work / "junk.tmp").write_bytes(b"tmp")
    admin_api = api_for(superuser)

    started = {
        mode: admin_api.post("/runs", {"plan": cleanup_plan(), "mode": mode})
        for mode in ("autonomous", "assisted", "interactive")
    }

    for mode, response in started.items():
        assert response.status_code == 201, (mode, response.content)
        run = advance(Run.objects.get(pk=response.json()["id"]))
        assert run.status == RunStatus.WAITING and not run.steps.exists(), mode
        assert pending(run).purpose == "plan_review", mode
    assert sorted(p.name for p in work.iterdir()) == ["junk.tmp", "keep.pdf"]
    run = Run.objects.get(pk=started["autonomous"].json()["id"])
    review = pending(run)
    refused = admin_api.post(f"/approvals/{review.pk}/decision", {"decision": "approve"})
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]

    approval_decide(request_id=review.pk, actor=reviewer, decision="approve")
    run = advance(run)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert sorted(p.name for p in work.iterdir()) == ["keep.pdf"]


def test_a_bare_plan_of_low_risk_actions_runs_without_review(workspace: Path, operator) -> None:
    (workspace / "docs").mkdir()
    run = advance(
        run_create(
            plan={"nodes": [{"id": "look", "action": "files.list", "params": {"path": "docs"}}]},
            mode="autonomous",
            requester=operator,
        )
    )
    assert run.status == RunStatus.SUCCEEDED
    assert not ApprovalRequest.objects.filter(run=run).exists()


# --- 4. allow_self_approval -------------------------------------------------


def self_spec(allow: bool) -> dict:
    return {
        **ASSISTED_SPEC,
        "slug": "self-service",
        "allow_self_approval": allow,
        "plan": {
            "nodes": [
                {"id": "gate", "type": "approval", "title": "Go?"},
                {"id": "risky", "action": "test.risky", "params": {"target": "{{ target }}"}},
            ]
        },
    }


def test_self_approval_is_read_from_the_version_the_run_froze(
    operator_reviewer, superuser
) -> None:
    workflow = workflow_create(raw_spec=self_spec(False), actor=superuser)
    before = advance(
        run_create(workflow=workflow, context={"target": "x"}, requester=operator_reviewer)
    )

    workflow = workflow_update(workflow=workflow, raw_spec=self_spec(True), actor=superuser)

    with pytest.raises(DecisionRefused, match="four-eyes"):
        approval_decide(request_id=pending(before).pk, actor=operator_reviewer, decision="approve")
    after = advance(
        run_create(workflow=workflow, context={"target": "y"}, requester=operator_reviewer)
    )
    approval_decide(request_id=pending(after).pk, actor=operator_reviewer, decision="approve")
    assert advance(after).current_node == "risky"
    changed = Event.objects.get(type="workflow.self_approval_changed")
    assert (changed.data, changed.actor) == (
        {"workflow": "self-service", "version": 2, "before": False, "after": True},
        superuser,
    )


def test_changing_self_approval_needs_its_own_permission(operator, superuser, client) -> None:
    api = api_for(operator)
    created = api.post("/workflows", {"spec": self_spec(True)})
    assert created.status_code == 400
    assert [e["field"] for e in created.json()["errors"]] == ["allow_self_approval"]
    assert not Workflow.objects.exists()
    assert api.post("/workflows", {"spec": self_spec(False)}).status_code == 201

    flipped = api.put("/workflows/self-service", {"spec": self_spec(True)})
    assert flipped.status_code == 400
    assert flipped.json()["errors"][0]["field"] == "allow_self_approval"
    client.force_login(operator)
    import yaml

    form = client.post(
        f"/admin/workflows/workflow/{Workflow.objects.get().pk}/change/",
        {"source": yaml.safe_dump(self_spec(True))},
    )
    assert form.status_code == 200
    assert "needs the permission workflows.set_self_approval" in form.content.decode()
    workflow = Workflow.objects.get()
    assert (workflow.version, workflow.spec["allow_self_approval"]) == (1, False)
    assert not Event.objects.filter(type="workflow.self_approval_changed").exists()
    # Other edits of the workflow need no such permission.
    assert (
        api.put(
            "/workflows/self-service", {"spec": {**self_spec(False), "title": "Renamed"}}
        ).status_code
        == 200
    )
    # No role group holds the permission; superusers hold every permission.
    assert all("workflows.set_self_approval" not in perms for perms in ROLE_PERMISSIONS.values())
    assert not Group.objects.filter(permissions__codename="set_self_approval").exists()
    assert superuser.has_perm("workflows.set_self_approval")


# --- 5. schedules and runs without a requester --------------------------------


@pytest.fixture
def people_wf(operator) -> Workflow:
    from tests.api.conftest import PEOPLE_SPEC

    return workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)


def test_a_schedules_runs_are_requested_by_the_person_who_saved_it(
    people_wf, operator, reviewer, client
) -> None:
    schedule = schedule_save(
        schedule=WorkflowSchedule(
            name="hourly",
            workflow=people_wf,
            kind="interval",
            minutes=60,
            context={"name": "Tick"},
            owner=reviewer,
        ),
        actor=operator,
    )
    assert schedule.owner == operator
    assert Event.objects.get(type="schedule.created").data["requester"] == "operator"
    with pytest.raises(ScheduleRefused):
        schedule_save(schedule=schedule, actor=reviewer)  # may not start runs
    with pytest.raises(ScheduleRefused):
        schedule_save(schedule=schedule, actor=None)

    client.force_login(operator)
    response = client.post(
        "/admin/workflows/workflowschedule/add/",
        {
            "name": "daily",
            "workflow": people_wf.pk,
            "kind": "cron",
            "cron": "0 6 * * *",
            "context": '{"name": "Day"}',
            "mode": "",
            "enabled": "on",
            "owner": reviewer.pk,
        },
    )
    assert response.status_code == 302
    assert WorkflowSchedule.objects.get(name="daily").owner == operator

    run = Run.objects.get(pk=start_scheduled_run(schedule.pk))
    assert run.requester == operator
    run = advance(run)
    with pytest.raises(DecisionRefused, match="four-eyes"):
        approval_decide(
            request_id=pending(run).pk, actor=superuser_of(operator), decision="approve"
        )


def superuser_of(user: Any) -> Any:
    """The same person, promoted: four-eyes binds superusers too."""
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return get_user_model().objects.get(pk=user.pk)


def test_a_schedule_whose_owner_is_gone_starts_nothing(people_wf, operator) -> None:
    schedule = schedule_save(
        schedule=WorkflowSchedule(
            name="hourly",
            workflow=people_wf,
            kind="interval",
            minutes=60,
            context={"name": "Tick"},
        ),
        actor=operator,
    )
    q_id = schedule.q_schedule_id
    WorkflowSchedule.objects.filter(pk=schedule.pk).update(owner=None)

    assert start_scheduled_run(schedule.pk) is None

    assert not Run.objects.exists()
    schedule.refresh_from_db()
    assert not schedule.enabled and not Schedule.objects.filter(pk=q_id).exists()
    assert Event.objects.filter(type="schedule.disabled").count() == 1


def test_a_run_without_a_requester_cannot_be_decided_anywhere(
    people_wf, reviewer, superuser, client
) -> None:
    run = advance(run_create(workflow=people_wf, context={"name": "Nobody"}))
    request = pending(run)

    for actor in (reviewer, superuser):
        with pytest.raises(DecisionRefused, match="no requester"):
            approval_decide(request_id=request.pk, actor=actor, decision="approve")
    api = api_for(reviewer)
    refused = api.post(f"/approvals/{request.pk}/decision", {"decision": "approve"})
    assert refused.status_code == 403 and "no requester" in refused.json()["detail"]
    client.force_login(reviewer)
    page = client.get(f"/inbox/requests/{request.pk}/")
    assert page.status_code == 200 and "no requester" in page.content.decode()
    posted = client.post(
        f"/inbox/requests/{request.pk}/", {"decision": "approve", "digest": request.digest}
    )
    assert posted.status_code == 403
    client.force_login(superuser)
    admin = client.post(
        f"/admin/approvals/approvalrequest/{request.pk}/change/",
        {"decision": "approve"},
        follow=True,
    )
    assert "no requester" in admin.content.decode()
    assert pending(run).pk == request.pk
    assert Run.objects.get(pk=run.pk).status == RunStatus.WAITING
    assert not run.steps.filter(status=StepStatus.SUCCEEDED).exists()
