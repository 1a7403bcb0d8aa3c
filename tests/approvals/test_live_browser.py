"""End to end in a real Chromium, against daphne and a real qcluster.

A reviewer's open inbox shows a paused run arrive without reloading; they
fill the missing field, approve, and watch the run finish live. An auditor
sees no decide controls and a forged POST is refused. A page whose socket
dropped catches up on every event it missed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from tests.support.browsers import logged_in
from tests.support.runs import pending_request, status
from tests.support.waiting import wait_for
from workflows.models import Event, Run
from workflows.services import run_create

pytestmark = [pytest.mark.worker, pytest.mark.browser]


def test_a_reviewer_watches_a_run_arrive_gets_decided_and_finish_live(
    daphne, cluster, operator, reviewer, auditor, tmp_path, orm, browser
) -> None:
    cluster().wait_running()
    ledger = tmp_path / "ledger"
    page = logged_in(browser, daphne.url, "reviewer")
    page.wait_for_selector("#live-state[data-state=live]")
    assert page.text_content("#inbox-empty") == "Nothing waiting."
    page.evaluate("window.__sameDocument = true")

    run = orm(
        lambda: run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "order",
                        "action": "test.ledger_append",
                        "params": {"ledger": str(ledger), "line": "{{ laptop_model }}"},
                    },
                ]
            },
        )
    )
    link = page.wait_for_selector("#requests a:has-text('a value is missing')", timeout=20000)
    assert page.evaluate("window.__sameDocument") is True  # arrived without a reload
    assert page.text_content("#count-pending") == "1"

    link.click()
    page.wait_for_selector("#run-live [data-live=status]:has-text('waiting')")
    page.fill("#id_values-laptop_model", "ThinkPad T14")
    page.click("#approve")
    page.wait_for_selector("#request-status:has-text('Approved')")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#run-live [data-live=status]:has-text('succeeded')", timeout=20000)
    assert page.evaluate("window.__sameDocument") is True  # finished live
    assert page.text_content("#run-live [data-live=progress-text]") == "1/1"
    assert ledger.read_text().splitlines() == ["ThinkPad T14"]
    assert orm(lambda: status(run)) == "succeeded"

    # The auditor: read-only, and a forged POST (with a valid CSRF token) is refused.
    audit = logged_in(browser, daphne.url, "auditor")
    second = orm(
        lambda: run_create(
            mode="autonomous",
            requester=operator,
            plan={"nodes": [{"id": "gate", "type": "approval", "title": "Second gate"}]},
        )
    )
    wait_for(lambda: orm(lambda: status(second)) == "waiting", message="the second run to pause")
    request = orm(lambda: pending_request(second))
    audit.goto(f"/inbox/requests/{request.pk}/")
    assert audit.query_selector("#approve") is None
    assert audit.query_selector("#read-only") is not None
    token = next(c["value"] for c in audit.context.cookies() if c["name"] == "csrftoken")
    forged = audit.context.request.post(
        f"{daphne.url}/inbox/requests/{request.pk}/",
        form={"csrfmiddlewaretoken": token, "decision": "approve", "digest": request.digest},
    )
    assert forged.status == 403
    assert orm(lambda: pending_request(second).status) == "pending"


def test_a_page_whose_socket_dropped_catches_up_on_every_missed_event(
    daphne, cluster, operator, reviewer, roles, tmp_path, orm, browser
) -> None:
    from tests.support.fixtures import make_user

    boss = orm(lambda: make_user(roles, "boss", "Reviewers"))
    cluster().wait_running()
    run = orm(
        lambda: run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {"id": "gate", "type": "approval", "title": "Go?"},
                    {
                        "id": "a",
                        "action": "test.ledger_append",
                        "params": {"ledger": str(tmp_path / "l"), "line": "a"},
                    },
                    {
                        "id": "b",
                        "action": "test.ledger_append",
                        "params": {"ledger": str(tmp_path / "l"), "line": "b"},
                    },
                ]
            },
        )
    )
    wait_for(lambda: orm(lambda: status(run)) == "waiting", message="the run to pause")
    seen = orm(lambda: Run.objects.get(pk=run.pk).last_seq)
    request_id = orm(lambda: pending_request(run).pk)
    page = logged_in(browser, daphne.url, "reviewer")
    page.goto(f"/inbox/requests/{request_id}/")
    page.wait_for_selector("#live-state[data-state=live]")
    # The admin's run page and run list watch the same run, live.
    admin = page.context.new_page()
    admin.goto(f"/admin/workflows/run/{run.pk}/change/")
    admin_list = page.context.new_page()
    admin_list.goto("/admin/workflows/run/")
    for watcher in (admin, admin_list):
        watcher.wait_for_function("() => document.getElementById('live-state') === null")
    page.evaluate("AgentOSLive.pause()")  # the connection drops

    orm(lambda: approval_decide(request_id=request_id, actor=boss, decision="approve"))
    wait_for(lambda: orm(lambda: status(run)) == "succeeded", message="the run to finish")
    assert page.text_content("#run-live [data-live=status]") == "waiting"  # it missed them

    admin.wait_for_selector(".field-status_label [data-live=status]:has-text('succeeded')")
    assert admin.text_content(".field-progress [data-live=progress-text]") == "3/3"
    row = f"#result_list tr:has(a[href$='/run/{run.pk}/change/'])"
    admin_list.wait_for_selector(f"{row} td.field-status_label:has-text('succeeded')")
    assert "3/3" in admin_list.text_content(f"{row} td.field-progress")

    page.evaluate("AgentOSLive.resume()")
    page.wait_for_selector("#run-live [data-live=status]:has-text('succeeded')", timeout=20000)
    shown = [
        int(s)
        for s in page.eval_on_selector_all(
            "#run-live [data-live=events] li", "items => items.map(i => i.dataset.seq)"
        )
    ]
    final = orm(lambda: Run.objects.get(pk=run.pk).last_seq)
    assert shown == list(range(seen + 1, final + 1))
    assert orm(lambda: Event.objects.filter(run=run).count()) == final
    assert orm(lambda: ApprovalRequest.objects.get(run=run).decided_by_id) == boss.pk
    assert Path(tmp_path / "l").read_text().splitlines() == ["a", "b"]
