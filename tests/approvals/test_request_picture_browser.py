"""A reviewer's request page in a real Chromium: the plan drawn with the node
the request is for outlined, each node's state, the guarded actions marked,
kept live over the run's websocket; 390 px fits; axe finds nothing serious."""

from __future__ import annotations

import json

import pytest

from approvals.services import approval_decide
from tests.support.axe import violations
from tests.support.runs import advance
from workflows.models import Run
from workflows.services import run_create

pytestmark = [pytest.mark.browser]


def logged_in(browser, base: str, username: str):  # type: ignore[no-untyped-def]
    """A page logged in as `username`; CSP bypassed so axe can be injected."""
    page = browser.new_context(base_url=base, bypass_csp=True).new_page()
    page.goto("/admin/login/?next=/inbox/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_load_state()
    return page


def lanes_plan(ledger: str) -> dict:
    """Two lanes, each a gate guarding a ledger append; then a branch on the result."""

    def lane(name: str) -> dict:
        return {
            "nodes": [
                {"id": f"{name}_ok", "type": "approval", "title": f"Write {name}?"},
                {
                    "id": f"{name}_write",
                    "action": "test.ledger_append",
                    "params": {"ledger": ledger, "line": name},
                },
            ]
        }

    return {
        "nodes": [
            {"id": "both", "type": "parallel", "branches": [lane("left"), lane("right")]},
            {
                "id": "route",
                "type": "branch",
                "cases": [{"when": "decisions.left_ok.decision == 'approve'", "next": "end"}],
                "default": "stop",
            },
            {"id": "stop", "type": "fail", "message": "left was not approved"},
        ]
    }


def test_the_request_page_draws_the_plan_with_its_node_and_stays_live(
    daphne, operator, reviewer, tmp_path, orm, browser
) -> None:
    def make() -> tuple[Run, int, int]:
        run = advance(
            run_create(
                plan=lanes_plan(str(tmp_path / "ledger")), mode="autonomous", requester=operator
            )
        )
        assert run.status == "waiting", run.error
        pending = {r.node_id: r.pk for r in run.approval_requests.filter(status="pending")}
        return run, pending["left_ok"], pending["right_ok"]

    run, left, right = orm(make)
    page = logged_in(browser, daphne.url, "reviewer")
    page.goto(f"/inbox/requests/{left}/")
    page.wait_for_selector("#live-state[data-state=live]")
    picture = page.locator("#request-picture")
    here = picture.locator(".is-here")
    assert here.count() == 1 and here.get_attribute("data-node") == "left_ok"
    assert here.get_attribute("aria-current") == "step"
    assert "this request" in here.inner_text() and "waiting for a person" in here.inner_text()
    guarded = picture.locator('[data-node="left_write"]')
    assert "runs as approved here" in guarded.inner_text()
    assert "runs as approved here" not in picture.locator('[data-node="right_write"]').inner_text()
    assert "waiting for a person" in picture.locator('[data-node="right_ok"]').inner_text()
    route = picture.locator('[data-node="route"]').inner_text()
    assert "decisions.left_ok.decision == 'approve'" in route and "otherwise → stop" in route

    # Someone decides the other lane: this page's picture follows, without a reload.
    page.evaluate("window.__sameDocument = true")
    orm(lambda: approval_decide(request_id=right, actor=reviewer, decision="approve"))
    page.wait_for_selector('#request-picture [data-node="right_ok"].state-done', timeout=20000)
    assert page.evaluate("window.__sameDocument") is True
    assert picture.locator(".is-here").get_attribute("data-node") == "left_ok"

    bad = violations(page, f"/inbox/requests/{left}/")
    assert bad == [], json.dumps(bad, indent=1)

    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 800})
    phone.goto(f"/inbox/requests/{left}/")
    phone.wait_for_load_state("networkidle")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the request page is {width} px wide at 390 px"


def test_the_picture_fragment_answers_only_those_who_may_see_the_request(
    daphne, operator, reviewer, roles, tmp_path, orm, browser
) -> None:
    from tests.support.fixtures import make_user

    def make() -> int:
        make_user(roles, "outsider", None)
        run = advance(
            run_create(
                plan=lanes_plan(str(tmp_path / "ledger")), mode="autonomous", requester=operator
            )
        )
        return run.approval_requests.get(node_id="left_ok").pk

    left = orm(make)
    page = logged_in(browser, daphne.url, "reviewer")
    answer = page.context.request.get(f"{daphne.url}/inbox/requests/{left}/picture/")
    assert answer.status == 200 and 'data-node="left_ok"' in answer.text()
    assert "no-store" in answer.headers["cache-control"]
    outsider = logged_in(browser, daphne.url, "outsider")
    refused = outsider.context.request.get(f"{daphne.url}/inbox/requests/{left}/picture/")
    assert refused.status in (403, 404)
    assert "left_ok" not in refused.text()
    anonymous = browser.new_context().request.get(
        f"{daphne.url}/inbox/requests/{left}/picture/", max_redirects=0
    )
    assert anonymous.status == 302
