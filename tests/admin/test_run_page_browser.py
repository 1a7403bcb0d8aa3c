"""The run page in a real Chromium, against daphne and a real qcluster.

Every section follows the run: after a decision the requests, steps, graph
and events are re-rendered from the live fragment, and a page whose socket
dropped catches up by seq when it comes back.
"""

from __future__ import annotations

import pytest

from approvals.services import approval_decide
from tests.support.browsers import logged_in
from tests.support.runs import pending_request, status
from tests.support.waiting import wait_for
from workflows.models import Run
from workflows.services import run_create

pytestmark = [pytest.mark.worker, pytest.mark.browser]


def test_the_whole_run_page_follows_the_run_and_catches_up_after_a_drop(
    daphne, cluster, operator, reviewer, roles, tmp_path, orm, browser
) -> None:
    from tests.support.fixtures import make_user as _user

    boss = orm(lambda: _user(roles, "boss", "Reviewers"))
    cluster()
    ledger = str(tmp_path / "ledger")
    run = orm(
        lambda: run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {"id": "first", "type": "approval", "title": "First?"},
                    {
                        "id": "a",
                        "action": "test.ledger_append",
                        "params": {"ledger": ledger, "line": "a"},
                    },
                    {"id": "second", "type": "approval", "title": "Second?"},
                    {
                        "id": "b",
                        "action": "test.ledger_append",
                        "params": {"ledger": ledger, "line": "b"},
                    },
                ]
            },
        )
    )
    wait_for(lambda: orm(lambda: status(run)) == "waiting", message="the run to pause")
    page = logged_in(browser, daphne.url, "reviewer")
    page.goto(f"/admin/workflows/run/{run.pk}/change/")
    page.wait_for_selector("#run-live-state[data-state=live]")
    assert "First?" in page.text_content(".run-waiting")
    page.evaluate("window.__sameDocument = true")

    first = orm(lambda: pending_request(run).pk)
    orm(lambda: approval_decide(request_id=first, actor=boss, decision="approve"))
    page.wait_for_selector(".run-waiting:has-text('Second?')", timeout=20000)
    assert page.evaluate("window.__sameDocument") is True  # re-rendered, not reloaded
    rows = page.text_content("#run-approvals tbody")
    assert "Approved" in rows and "Pending" in rows
    assert page.query_selector('#run-steps tbody.step-succeeded code:text-is("a")') is not None
    assert page.query_selector('[data-node="first"].state-done') is not None
    assert page.query_selector('[data-node="second"].state-waiting') is not None
    seq = orm(lambda: Run.objects.get(pk=run.pk).last_seq)
    assert page.get_attribute("#run-panel-body", "data-seq") == str(seq)

    page.evaluate("AgentOSLive.pause()")  # the connection drops
    second = orm(lambda: pending_request(run).pk)
    orm(lambda: approval_decide(request_id=second, actor=boss, decision="approve"))
    wait_for(lambda: orm(lambda: status(run)) == "succeeded", message="the run to finish")
    assert page.get_attribute("#run-panel-body", "data-status") == "waiting"  # it missed them

    page.evaluate("AgentOSLive.resume()")
    page.wait_for_selector("#run-panel-body[data-status=succeeded]", timeout=20000)
    final = orm(lambda: Run.objects.get(pk=run.pk).last_seq)
    assert page.get_attribute("#run-panel-body", "data-seq") == str(final)
    assert page.query_selector(".run-waiting") is None
    assert "Pending" not in page.text_content("#run-approvals tbody")
    assert page.text_content(".field-progress [data-live=progress-text]") == "4/4"
    newest = page.text_content("#run-events-table tbody tr:first-child td:first-child")
    assert newest.strip() == str(final)
    assert page.evaluate("window.__sameDocument") is True
