"""axe-core in a real Chromium: no critical or serious violation on the main pages.

axe-core is vendored (tests/support/vendor/axe.min.js, from the npm package
`axe-core` 4.14.1, MPL-2.0) and injected into each page; the pages are the
reviewer's inbox and a request, and the admin's run list, a run page and a
request. The inbox pages are also checked at 390 px: no sideways scrolling.
"""

from __future__ import annotations

import json

import pytest

from approvals.services import approval_decide
from tests.support.axe import violations
from tests.support.runs import advance, pending_request
from workflows.services import run_create

pytestmark = [pytest.mark.browser]


@pytest.fixture
def pages(operator, reviewer, roles, tmp_path, orm):  # type: ignore[no-untyped-def]
    """Return a waiting run, its request, and a finished run with steps."""
    from tests.support.fixtures import make_user as _user

    def make() -> dict:
        _user(roles, "root", None, superuser=True)
        ledger = str(tmp_path / "ledger")
        plan = {
            "nodes": [
                {
                    "id": "write",
                    "action": "test.ledger_append",
                    "params": {"ledger": ledger, "line": "{{ line }}"},
                },
                {"id": "gate", "type": "approval", "title": "Append {{ line }} again?"},
                {
                    "id": "again",
                    "action": "test.ledger_append",
                    "params": {"ledger": ledger, "line": "{{ line }}"},
                },
            ]
        }
        waiting = advance(
            run_create(plan=plan, mode="autonomous", context={"line": "a"}, requester=operator)
        )
        done = advance(
            run_create(plan=plan, mode="autonomous", context={"line": "b"}, requester=operator)
        )
        approval_decide(request_id=pending_request(done).pk, actor=reviewer, decision="approve")
        done = advance(done)
        assert (waiting.status, done.status) == ("waiting", "succeeded")
        return {"waiting": waiting, "done": done, "request": pending_request(waiting)}

    return orm(make)


def test_the_main_pages_have_no_critical_or_serious_axe_violation(daphne, pages, browser) -> None:
    found: dict[str, list[dict]] = {}
    for username, paths in [
        ("reviewer", ["/inbox/", f"/inbox/requests/{pages['request'].pk}/", "/inbox/?archive=1"]),
        (
            "root",
            [
                "/admin/workflows/run/",
                f"/admin/workflows/run/{pages['waiting'].pk}/change/",
                f"/admin/workflows/run/{pages['done'].pk}/change/",
                f"/admin/approvals/approvalrequest/{pages['request'].pk}/change/",
                "/admin/",
            ],
        ),
    ]:
        context = browser.new_context(base_url=daphne.url, bypass_csp=True)
        page = context.new_page()
        page.goto("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "pw")
        page.click("input[type=submit]")
        page.wait_for_load_state()
        for path in paths:
            bad = violations(page, path)
            if bad:
                found[path] = bad
        context.close()
    assert found == {}, json.dumps(found, indent=1)


def test_the_inbox_pages_fit_390_px_without_sideways_scrolling(daphne, pages, browser) -> None:
    context = browser.new_context(base_url=daphne.url, viewport={"width": 390, "height": 800})
    page = context.new_page()
    page.goto("/admin/login/?next=/inbox/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/inbox/")
    for path in ["/inbox/", f"/inbox/requests/{pages['request'].pk}/"]:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"
    context.close()
