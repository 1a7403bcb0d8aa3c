"""The onboarding workflow end to end: the engine drives real Chromium on the portals."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.signals import request_started

from approvals.models import RequestKind
from approvals.services import approval_decide
from portals.models import Employee, HardwareOrder, ITAccount
from tests.executors._procs import is_gone
from tests.support.portal_fixtures import chromium_family, spare_children
from tests.support.review import approve_plan_review
from tests.support.runs import advance
from tests.support.runs import pending_request as pending
from workflows import executor_config
from workflows.models import Event, Run
from workflows.plans import parse_spec_text
from workflows.services import run_create, workflow_create
from workflows.states import RunStatus, StepStatus

pytestmark = pytest.mark.browser

SPEC = Path(settings.BASE_DIR) / "workflows" / "demo" / "employee-onboarding.yaml"


def onboarding(operator, **context: str) -> Run:  # type: ignore[no-untyped-def]
    source = SPEC.read_text()
    workflow = workflow_create(raw_spec=parse_spec_text(source), source=source, actor=operator)
    return run_create(
        workflow=workflow,
        requester=operator,
        context={"employee_name": "Ada Lovelace", "department": "Engineering", **context},
    )


def test_onboarding_pauses_for_the_manager_and_the_laptop_then_finishes(
    portals, run_action, operator, reviewer
) -> None:
    run = advance(onboarding(operator))

    assert run.status == RunStatus.WAITING and run.current_node == "manager_approval"
    employee = Employee.objects.get()
    assert run.context["employee_id"] == employee.employee_id
    assert run.context["it_email"] == ITAccount.objects.get().email == "ada.lovelace@corp.example"
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")

    run = advance(run)
    assert run.status == RunStatus.WAITING and run.current_node == "laptop"
    asked = pending(run)
    assert asked.kind == RequestKind.INPUT and asked.purpose == "action_input"
    offered = asked.fields["properties"]["laptop_model"]["enum"]
    assert offered == ["Dell Latitude 7450", "MacBook Pro 14", "ThinkPad X1 Carbon"]
    assert asked.state["url"] == (
        f"{portals}/portals/procurement/orders/new/?email=ada.lovelace%40corp.example"
    )
    approval_decide(
        request_id=asked.pk,
        actor=reviewer,
        decision="approve",
        values={"laptop_model": "MacBook Pro 14"},
    )

    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    order = HardwareOrder.objects.get()
    assert (Employee.objects.count(), ITAccount.objects.count()) == (1, 1)
    assert (order.email, order.laptop.name) == ("ada.lovelace@corp.example", "MacBook Pro 14")
    assert run.context["order_id"] == order.order_id
    assert (
        order.external_ref
        == run.steps.get(node_id="laptop", status=StepStatus.SUCCEEDED).idempotency_key
    )

    steps = list(run.steps.order_by("id"))
    assert [(s.node_id, s.status) for s in steps] == [
        ("hr", StepStatus.SUCCEEDED),
        ("it", StepStatus.SUCCEEDED),
        ("laptop", StepStatus.NEEDS_INPUT),
        ("laptop", StepStatus.SUCCEEDED),
    ]
    shots = [f["name"] for s in steps for f in s.evidence["files"]]
    assert shots == [
        "hr-created.png",
        "it-created.png",
        "procurement-needs-model.png",
        "procurement-created.png",
    ]
    assert all(
        (Path(settings.MEDIA_ROOT) / f["path"]).is_file()
        for s in steps
        for f in s.evidence["files"]
    )

    # Secrets never reach the log, the plan or the context.
    stored = json.dumps(
        [
            list(Event.objects.filter(run=run).values("data")),
            run.plan,
            run.context,
            [s.evidence for s in steps],
        ]
    )
    for name in ("HR_PORTAL_PASSWORD", "IT_PORTAL_PASSWORD", "PROCUREMENT_PORTAL_PASSWORD"):
        assert settings.AGENTOS_SECRETS[name] not in stored

    # The same step again, with its key, finds the order instead of placing another.
    again = run_action(
        "procurement.order_laptop",
        {"email": order.email, "model": "MacBook Pro 14"},
        key=order.external_ref,
    )
    assert again.output == {"order_id": order.order_id, "laptop_model": "MacBook Pro 14"}
    assert HardwareOrder.objects.count() == 1


def test_a_known_model_orders_without_asking(portals, operator, reviewer) -> None:
    run = advance(onboarding(operator, laptop_model="ThinkPad X1 Carbon"))
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert HardwareOrder.objects.get().laptop.name == "ThinkPad X1 Carbon"


def _action_process(zygote: int | None) -> int | None:
    """Return the zygote's child that runs an action (the idle spare has no
    children; the light zygote, whose children are spares, is not one)."""
    if zygote is None:
        return None
    light = str(executor_config.runner().light_zygote_pid)
    for pid in Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split():
        if pid != light and Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            return int(pid)
    return None


def test_a_step_killed_after_the_portal_saved_is_retried_without_a_duplicate(
    portals, operator, reviewer
) -> None:
    """SIGKILL the action while the browser waits for the new employee's page."""
    killed: list[int] = []

    def kill_on_detail_page(sender: object, environ: dict, **kwargs: object) -> None:
        if environ["PATH_INFO"].startswith("/portals/hr/employees/EMP-") and not killed:
            pid = _action_process(executor_config.runner().zygote_pid)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    # A bare plan with a medium-risk action is reviewed before it runs.
    run = approve_plan_review(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "hr",
                        "action": "hr.create_employee",
                        "params": {"name": "Ada Lovelace", "department": "Engineering"},
                        "outputs": {"employee_id": "employee_id"},
                        "retry": {"max_attempts": 2, "backoff_s": 0.1},
                    }
                ]
            },
        ),
        reviewer,
    )
    request_started.connect(kill_on_detail_page)
    try:
        run = advance(run)
    finally:
        request_started.disconnect(kill_on_detail_page)

    assert killed, "the action was never killed"
    assert run.status == RunStatus.SUCCEEDED, run.error
    first, second = run.steps.order_by("attempt")
    assert (first.status, first.error) == (
        StepStatus.CRASHED,
        "the action process was killed by SIGKILL",
    )
    assert second.status == StepStatus.SUCCEEDED
    assert Employee.objects.count() == 1
    assert run.context["employee_id"] == Employee.objects.get().employee_id
    assert [f["name"] for f in second.evidence["files"]] == ["hr-existing.png"]
    assert chromium_family(executor_config.runner().zygote_pid) == {}


def test_wrong_credentials_fail_the_run_with_a_clear_step_error(
    portals, operator, settings
) -> None:
    settings.AGENTOS_SECRETS = {**settings.AGENTOS_SECRETS, "HR_PORTAL_PASSWORD": "wrong-pw"}
    source = SPEC.read_text().replace("retry: {max_attempts: 3, backoff_s: 1}", "")
    workflow = workflow_create(raw_spec=parse_spec_text(source), source=source, actor=operator)
    run = advance(
        run_create(
            workflow=workflow,
            requester=operator,
            context={"employee_name": "Ada Lovelace", "department": "Engineering"},
        )
    )
    assert run.status == RunStatus.FAILED
    assert run.error == (
        "hr: the HR portal refused the login: invalid username or password "
        "(check the secrets HR_PORTAL_USER and HR_PORTAL_PASSWORD) "
        "(after 1 attempt)"
    )
    step = run.steps.get()
    assert step.status == StepStatus.FAILED
    assert [f["name"] for f in step.evidence["files"]] == ["hr-login-refused.png"]
    assert Employee.objects.count() == 0


def test_a_page_that_never_loads_times_out_retries_and_leaves_no_chromium(
    portals, operator
) -> None:
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "visit",
                    "action": "test.portal_visit",
                    "params": {"path": "/portals/test/hang/"},
                    "timeout_s": 3,
                    "retry": {"max_attempts": 2, "backoff_s": 0.1},
                }
            ]
        },
    )
    seen: dict[int, str] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(chromium_family(executor_config.runner().zygote_pid))
            done.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = advance(run)
    finally:
        done.set()
        watcher.join()

    assert run.status == RunStatus.FAILED
    assert run.error == (
        "visit: timed out after 3 s; the action's processes were killed (after 2 attempts)"
    )
    assert list(run.steps.values_list("status", flat=True)) == [StepStatus.TIMED_OUT] * 2
    assert seen, "Chromium was never seen running"
    assert [pid for pid in seen if not is_gone(pid)] == []
    assert chromium_family(executor_config.runner().zygote_pid) == {}
    # The killed browsers' profile folders went with them; what is left is
    # the temp folder of the spare that waits, its own browser started.
    left = {
        p.name for p in (Path(executor_config.runner()._home or "/nonexistent") / "tmp").iterdir()
    }
    assert left <= {str(pid) for pid in spare_children(executor_config.runner().zygote_pid)}


def test_onboarding_several_hires_runs_hr_and_it_beside_the_laptop_choice(
    portals, operator, reviewer
) -> None:
    """The map's body: HR then IT in one branch, the laptop's choice in the other, at once."""
    from approvals.models import ApprovalRequest, RequestStatus

    def pending_requests(run: Run) -> list[ApprovalRequest]:
        return list(ApprovalRequest.objects.filter(run=run, status=RequestStatus.PENDING))

    source = (SPEC.parent / "onboard-new-hires.yaml").read_text()
    workflow = workflow_create(raw_spec=parse_spec_text(source), source=source, actor=operator)
    hires = [
        {"name": "Ada Lovelace", "department": "Engineering"},
        {"name": "Grace Hopper", "department": "Finance"},
    ]
    run = advance(run_create(workflow=workflow, requester=operator, context={"hires": hires}))
    # Both hires' HR records and IT accounts were made while their laptop choices waited.
    assert run.status == RunStatus.WAITING
    assert sorted(ITAccount.objects.values_list("email", flat=True)) == [
        "ada.lovelace@corp.example",
        "grace.hopper@corp.example",
    ]
    asked = sorted(pending_requests(run), key=lambda r: r.node_path)
    assert [r.node_path for r in asked] == [
        "hires[0]/setup/1/pick_laptop",
        "hires[1]/setup/1/pick_laptop",
    ]
    paths = set(run.steps.values_list("node_path", flat=True))
    assert paths == {
        f"hires[{i}]/setup/0/{n}" for i in (0, 1) for n in ("hr_record", "it_account")
    }
    for request, model in zip(asked, ("MacBook Pro 14", "ThinkPad X1 Carbon"), strict=True):
        approval_decide(
            request_id=request.pk,
            actor=reviewer,
            decision="approve",
            values={"laptop_model": model},
        )
    run = advance(run)
    gates = sorted(pending_requests(run), key=lambda r: r.node_path)
    assert [(r.node_path, r.title) for r in gates] == [
        (
            "hires[0]/approve",
            "Order a MacBook Pro 14 laptop for Ada Lovelace (ada.lovelace@corp.example)?",
        ),
        (
            "hires[1]/approve",
            "Order a ThinkPad X1 Carbon laptop for Grace Hopper (grace.hopper@corp.example)?",
        ),
    ]
    for request in gates:
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    orders = {o.email: o.laptop.name for o in HardwareOrder.objects.all()}
    assert orders == {
        "ada.lovelace@corp.example": "MacBook Pro 14",
        "grace.hopper@corp.example": "ThinkPad X1 Carbon",
    }
    assert [r["laptop_model"] for r in run.context["onboarded"]] == [
        "MacBook Pro 14",
        "ThinkPad X1 Carbon",
    ]
