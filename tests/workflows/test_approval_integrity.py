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
from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import DecisionRefused, approval_decide
from tests.api.conftest import api_for
from tests.conftest import _user
from workflows.engine import run_advance
from workflows.models import Event, Run, Workflow, WorkflowSchedule
from workflows.plans import PlanInvalid
from workflows.services import run_create, workflow_create, workflow_update
from workflows.states import RunStatus, StepStatus
from workflows.tasks import start_scheduled_run
from workflows.volume import ScheduleRefused, schedule_problems, schedule_save

pytestmark = pytest.mark.django_db


def advance(run: Run) -> Run:
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    return run


def pending(run: Run) -> ApprovalRequest:
    return ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)


@pytest.fixture
def operator_reviewer(roles):  # type: ignore[no-untyped-def]
    """Someone who may both start (and fork) runs and decide requests."""
    user = _user(roles, "opsrev", OPERATORS)
    user.groups.add(Group.objects.get(name=REVIEWERS))
    return get_user_model().objects.get(pk=user.pk)


# --- 2. modes ---------------------------------------------------------------


ASSISTED_SPEC = {
    "slug": "cleanup-assisted", "title": "Clean up (assisted)", "mode": "assisted",
    "inputs": {"type": "object", "required": ["target"],
               "properties": {"target": {"type": "string"}}},
    "plan": {"nodes": [{"id": "risky", "action": "test.risky",
                        "params": {"target": "{{ target }}"}}]},
}


@pytest.fixture
def assisted(operator) -> Workflow:
    return workflow_create(raw_spec=ASSISTED_SPEC, actor=operator)


def test_the_api_refuses_a_mode_weaker_than_the_workflows(assisted, operator) -> None:
    api = api_for(operator)

    weaker = api.post("/runs", {"workflow": assisted.slug, "context": {"target": "x"},
                                "mode": "autonomous"})

    assert weaker.status_code == 400
    assert [e["field"] for e in weaker.json()["errors"]] == ["mode"]
    assert "assisted" in weaker.json()["errors"][0]["message"]
    assert not Run.objects.exists()
    stricter = api.post("/runs", {"workflow": assisted.slug, "context": {"target": "x"},
                                  "mode": "interactive"})
    assert stricter.status_code == 201 and stricter.json()["mode"] == "interactive"
    default = api.post("/runs", {"workflow": assisted.slug, "context": {"target": "y"}})
    assert default.status_code == 201 and default.json()["mode"] == "assisted"
    # The weaker mode never ran the risky action unasked.
    run = advance(Run.objects.get(pk=default.json()["id"]))
    assert run.status == RunStatus.WAITING and pending(run).state["purpose"] == "mode_gate"


def test_the_admin_start_form_neither_offers_nor_accepts_a_weaker_mode(
        assisted, operator, client) -> None:
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
        assisted, operator, client) -> None:
    api = api_for(operator)
    batch = api.post("/runs/batch", {"workflow": assisted.slug, "rows": [{"target": "x"}],
                                     "mode": "autonomous"})
    assert batch.status_code == 400 and batch.json()["errors"][0]["field"] == "mode"
    client.force_login(operator)
    form = client.post(f"/admin/workflows/workflow/{assisted.pk}/batch/",
                       {"rows_json": '[{"target": "x"}]', "mode": "autonomous"})
    assert form.status_code == 200 and "mode" in form.context["form"].errors
    schedule = WorkflowSchedule(name="nightly", workflow=assisted, kind="cron",
                                cron="0 3 * * *", context={"target": "x"}, mode="autonomous")
    assert "never a weaker mode" in schedule_problems(schedule)["mode"]
    added = client.post("/admin/workflows/workflowschedule/add/", {
        "name": "nightly", "workflow": assisted.pk, "kind": "cron", "cron": "0 3 * * *",
        "context": '{"target": "x"}', "mode": "autonomous", "enabled": "on"})
    assert added.status_code == 200 and "mode" in added.context["adminform"].form.errors
    with pytest.raises(CommandError, match="mode"):
        call_command("start_run", "--workflow", assisted.slug, "--set", "target=x",
                     "--mode", "autonomous", "--as", operator.username)
    assert not Run.objects.exists() and not WorkflowSchedule.objects.exists()


# --- 3. bare plans ----------------------------------------------------------


def cleanup_plan(**params: Any) -> dict:
    return {"nodes": [{"id": "clean", "action": "files.cleanup",
                       "params": {"path": "work", **params}}]}


@pytest.mark.parametrize("pattern", ["?*", "[!x]*", "**", "*", "*.*", "*.pdf", "a/*.tmp"])
def test_cleanup_patterns_outside_the_allow_list_are_refused(
        workspace: Path, operator, pattern: str) -> None:
    (workspace / "work").mkdir()
    (workspace / "work" / "keep.pdf").write_bytes(b"%PDF")
    with pytest.raises(PlanInvalid) as caught:
        run_create(plan=cleanup_plan(temp_patterns=[pattern]), mode="autonomous",
                   requester=operator)
    assert [(e.node, e.field) for e in caught.value.errors] == [
        ("clean", "params.temp_patterns")]
    assert "not a name pattern for temporary files" in caught.value.errors[0].message
    assert not Run.objects.exists()
    assert (workspace / "work" / "keep.pdf").exists()


def test_a_risky_bare_plan_waits_for_someone_else_in_every_mode(
        workspace: Path, superuser, reviewer) -> None:
    work = workspace / "work"
    work.mkdir()
    (work / "keep.pdf").write_bytes(b"%PDF")
    (work / "junk.tmp").write_bytes(b"tmp")
    admin_api = api_for(superuser)

    started = {mode: admin_api.post("/runs", {"plan": cleanup_plan(), "mode": mode})
               for mode in ("autonomous", "assisted", "interactive")}

    for mode, response in started.items():
        assert response.status_code == 201, (mode, response.content)
        run = advance(Run.objects.get(pk=response.json()["id"]))
        assert run.status == RunStatus.WAITING and not run.steps.exists(), mode
        assert pending(run).state["purpose"] == "plan_review", mode
    assert sorted(p.name for p in work.iterdir()) == ["junk.tmp", "keep.pdf"]
    run = Run.objects.get(pk=started["autonomous"].json()["id"])
    review = pending(run)
    refused = admin_api.post(f"/approvals/{review.pk}/decision", {"decision": "approve"})
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]

    approval_decide(request_id=review.pk, actor=reviewer, decision="approve")
    run = advance(run)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert sorted(p.name for p in work.iterdir()) == ["keep.pdf"]


def test_a_bare_plan_of_low_risk_actions_runs_without_review(workspace: Path,
                                                           operator) -> None:
    (workspace / "docs").mkdir()
    run = advance(run_create(plan={"nodes": [
        {"id": "look", "action": "files.list", "params": {"path": "docs"}}]},
        mode="autonomous", requester=operator))
    assert run.status == RunStatus.SUCCEEDED
    assert not ApprovalRequest.objects.filter(run=run).exists()


# --- 4. allow_self_approval -------------------------------------------------


def self_spec(allow: bool) -> dict:
    return {**ASSISTED_SPEC, "slug": "self-service", "allow_self_approval": allow,
            "plan": {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"},
                               {"id": "risky", "action": "test.risky",
                                "params": {"target": "{{ target }}"}}]}}


def test_self_approval_is_read_from_the_version_the_run_froze(
        operator_reviewer, superuser) -> None:
    workflow = workflow_create(raw_spec=self_spec(False), actor=superuser)
    before = advance(run_create(workflow=workflow, context={"target": "x"},
                                requester=operator_reviewer))

    workflow = workflow_update(workflow=workflow, raw_spec=self_spec(True), actor=superuser)

    with pytest.raises(DecisionRefused, match="four-eyes"):
        approval_decide(request_id=pending(before).pk, actor=operator_reviewer,
                        decision="approve")
    after = advance(run_create(workflow=workflow, context={"target": "y"},
                               requester=operator_reviewer))
    approval_decide(request_id=pending(after).pk, actor=operator_reviewer, decision="approve")
    assert advance(after).current_node == "risky"
    changed = Event.objects.get(type="workflow.self_approval_changed")
    assert (changed.data, changed.actor) == ({"workflow": "self-service", "version": 2,
                                              "before": False, "after": True}, superuser)


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

    form = client.post(f"/admin/workflows/workflow/{Workflow.objects.get().pk}/change/",
                       {"source": yaml.safe_dump(self_spec(True))})
    assert form.status_code == 200 and "allow_self_approval" in form.content.decode()
    workflow = Workflow.objects.get()
    assert (workflow.version, workflow.spec["allow_self_approval"]) == (1, False)
    assert not Event.objects.filter(type="workflow.self_approval_changed").exists()
    # Other edits of the workflow need no such permission.
    assert api.put("/workflows/self-service",
                   {"spec": {**self_spec(False), "title": "Renamed"}}).status_code == 200
    # No role group holds the permission; superusers hold every permission.
    assert all("workflows.set_self_approval" not in perms
               for perms in ROLE_PERMISSIONS.values())
    assert not Group.objects.filter(permissions__codename="set_self_approval").exists()
    assert superuser.has_perm("workflows.set_self_approval")


# --- 5. schedules and runs without a requester --------------------------------


@pytest.fixture
def people_wf(operator) -> Workflow:
    from tests.api.conftest import PEOPLE_SPEC

    return workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)


def test_a_schedules_runs_are_requested_by_the_person_who_saved_it(
        people_wf, operator, reviewer, client) -> None:
    schedule = schedule_save(schedule=WorkflowSchedule(
        name="hourly", workflow=people_wf, kind="interval", minutes=60,
        context={"name": "Tick"}, owner=reviewer), actor=operator)
    assert schedule.owner == operator
    assert Event.objects.get(type="schedule.created").data["requester"] == "operator"
    with pytest.raises(ScheduleRefused):
        schedule_save(schedule=schedule, actor=reviewer)  # may not start runs
    with pytest.raises(ScheduleRefused):
        schedule_save(schedule=schedule, actor=None)

    client.force_login(operator)
    response = client.post("/admin/workflows/workflowschedule/add/", {
        "name": "daily", "workflow": people_wf.pk, "kind": "cron", "cron": "0 6 * * *",
        "context": '{"name": "Day"}', "mode": "", "enabled": "on", "owner": reviewer.pk})
    assert response.status_code == 302
    assert WorkflowSchedule.objects.get(name="daily").owner == operator

    run = Run.objects.get(pk=start_scheduled_run(schedule.pk))
    assert run.requester == operator
    run = advance(run)
    with pytest.raises(DecisionRefused, match="four-eyes"):
        approval_decide(request_id=pending(run).pk, actor=superuser_of(operator),
                        decision="approve")


def superuser_of(user: Any) -> Any:
    """The same person, promoted: four-eyes binds superusers too."""
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return get_user_model().objects.get(pk=user.pk)


def test_a_schedule_whose_owner_is_gone_starts_nothing(people_wf, operator) -> None:
    schedule = schedule_save(schedule=WorkflowSchedule(
        name="hourly", workflow=people_wf, kind="interval", minutes=60,
        context={"name": "Tick"}), actor=operator)
    q_id = schedule.q_schedule_id
    WorkflowSchedule.objects.filter(pk=schedule.pk).update(owner=None)

    assert start_scheduled_run(schedule.pk) is None

    assert not Run.objects.exists()
    schedule.refresh_from_db()
    assert not schedule.enabled and not Schedule.objects.filter(pk=q_id).exists()
    assert Event.objects.filter(type="schedule.disabled").count() == 1


def test_a_run_without_a_requester_cannot_be_decided_anywhere(
        people_wf, reviewer, superuser, client) -> None:
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
    posted = client.post(f"/inbox/requests/{request.pk}/",
                         {"decision": "approve", "digest": request.digest})
    assert posted.status_code == 403
    client.force_login(superuser)
    admin = client.post(f"/admin/approvals/approvalrequest/{request.pk}/change/",
                        {"decision": "approve"}, follow=True)
    assert "no requester" in admin.content.decode()
    assert pending(run).pk == request.pk
    assert Run.objects.get(pk=run.pk).status == RunStatus.WAITING
    assert not run.steps.filter(status=StepStatus.SUCCEEDED).exists()
