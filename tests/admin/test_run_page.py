"""The run page tells the story: who must act, the plan's picture, readable data.

The panel is rendered by one function for the page and for its live
fragment (`/admin/workflows/run/<id>/live/`), which is permission-checked
like the page itself.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from approvals.services import approval_decide
from tests.admin.support import client_for
from tests.support.runs import advance, pending_request
from workflows.picture import node_states, render_graph
from workflows.readable import readable, readable_with_raw
from workflows.services import run_create

pytestmark = pytest.mark.django_db

GRAPH_PLAN = {
    "nodes": [
        {
            "id": "route",
            "type": "branch",
            "cases": [{"when": "amount > 5000 && department == 'Finance'", "next": "cfo"}],
            "default": "manager",
        },
        {
            "id": "cfo",
            "type": "approval",
            "title": "Pay {{ amount }}?",
            "assign_to": "Finance",
            "on_reject": "tell_requester",
            "next": "setup",
        },
        {"id": "manager", "type": "approval", "assign_to": "Reviewers"},
        {
            "id": "setup",
            "type": "parallel",
            "branches": [
                {"nodes": [{"id": "hr", "action": "hr.create_employee"}]},
                {"nodes": [{"id": "badge", "action": "files.copy"}]},
            ],
        },
        {
            "id": "laptops",
            "type": "map",
            "items": "{{ employees }}",
            "as": "employee",
            "max_concurrency": 3,
            "results": "laptop_orders",
            "nodes": [{"id": "order", "action": "procurement.order_laptop"}],
        },
        {
            "id": "onboard_manager",
            "type": "workflow",
            "workflow": "employee-onboarding",
            "version": 3,
            "inputs": {"employee_name": "{{ manager_name }}"},
            "next": "end",
        },
        {"id": "tell_requester", "type": "fail", "message": "Rejected: {{ reason }}"},
    ]
}


def change_url(run) -> str:  # type: ignore[no-untyped-def]
    return reverse("admin:workflows_run_change", args=[run.pk])


def live_url(run) -> str:  # type: ignore[no-untyped-def]
    return reverse("admin:workflows_run_live", args=[run.pk])


def test_the_first_screen_says_what_the_run_waits_for_and_who_must_act(
    operator, waiting_run
) -> None:
    page = client_for(operator).get(change_url(waiting_run)).content.decode()
    first = page[page.index('class="run-first"') : page.index('id="run-plan"')]
    item = pending_request(waiting_run)
    assert "Waiting for a person" in first
    assert "Waiting for <strong>Reviewers</strong> to approve" in first
    assert f'href="{reverse("inbox:request", args=[item.pk])}"' in first
    assert "“OK for Ada Lovelace?”" in first
    assert "under a minute" in first
    assert 'data-live="progress-text">0/1<' in first
    assert "operator" in first  # the requester
    assert 'name="_save"' not in page and "History" not in page


def test_a_failed_run_shows_its_error_in_a_box(operator) -> None:
    plan = {"nodes": [{"id": "check", "action": "test.fail", "params": {"message": "nope.txt"}}]}
    run = advance(run_create(plan=plan, mode="autonomous", requester=operator))
    assert run.status == "failed"
    page = client_for(operator).get(change_url(run)).content.decode()
    box = re.search(r'<div class="run-error" role="alert">(.*?)</div>', page, re.S)
    assert box and "The run failed" in box.group(1) and "nope.txt" in box.group(1)
    assert 'class="agentos-node kind-action state-failed" data-node="check"' in page


def test_the_live_fragment_is_the_panel_and_follows_a_decision(
    operator, reviewer, waiting_run
) -> None:
    client = client_for(operator)
    before = client.get(live_url(waiting_run))
    assert before.status_code == 200 and "no-store" in before["Cache-Control"]
    body = before.content.decode()
    assert "<html" not in body and f'data-seq="{waiting_run.last_seq}"' in body
    assert "state-waiting" in body and "Pending" in body

    approval_decide(request_id=pending_request(waiting_run).pk, actor=reviewer, decision="approve")
    run = advance(waiting_run)
    after = client.get(live_url(run)).content.decode()
    assert run.status == "succeeded" and f'data-seq="{run.last_seq}"' in after
    assert "Succeeded" in after and "Approved" in after and "Waiting for <strong>" not in after
    assert 'class="agentos-node kind-approval state-done" data-node="gate"' in after
    assert 'id="cancel-run"' not in after  # nothing left to cancel


def test_the_live_fragment_checks_permissions_like_the_page(waiting_run, roles) -> None:
    outsider = get_user_model().objects.create_user("outsider", password="x", is_staff=True)
    assert client_for(outsider).get(live_url(waiting_run)).status_code == 403
    anonymous = client_for(outsider)
    anonymous.logout()
    assert anonymous.get(live_url(waiting_run)).status_code == 302
    staff = get_user_model().objects.create_superuser("root", password="x")
    missing = reverse("admin:workflows_run_live", args=[waiting_run.pk + 999])
    assert client_for(staff).get(missing).status_code == 404


def test_every_node_kind_of_a_graph_plan_is_drawn_with_its_state() -> None:
    states = {"route": "done", "cfo": "waiting", "hr": "done", "badge": "running"}
    html = render_graph(GRAPH_PLAN, states, {"amount": 7200})
    for node_id, kind, state in [
        ("route", "branch", "done"),
        ("cfo", "approval", "waiting"),
        ("manager", "approval", "pending"),
        ("setup", "parallel", "pending"),
        ("hr", "action", "done"),
        ("badge", "action", "running"),
        ("laptops", "map", "pending"),
        ("order", "action", "pending"),
        ("onboard_manager", "workflow", "pending"),
        ("tell_requester", "fail", "pending"),
    ]:
        assert f'kind-{kind} state-{state}" data-node="{node_id}"' in html, node_id
    when = "amount &gt; 5000 &amp;&amp; department == &#x27;Finance&#x27;"
    assert f"<code>{when}</code> → cfo" in html
    assert "otherwise → manager" in html
    assert "Pay 7200? — Finance" in html  # the title with the context's value
    assert "if rejected → tell_requester" in html and "then → setup" in html
    assert "for each employee in {{ employees }}, at most 3 at a time" in html
    assert "results → laptop_orders" in html
    assert "employee-onboarding v3" in html
    assert "Rejected: {{ reason }}" in html  # not known yet: shown as written
    assert html.count("branch 1") == 1 and html.count("branch 2") == 1
    # The parallel's branches are drawn inside its box, the map's body inside its own.
    setup = html[html.index('data-node="setup"') : html.index('data-node="laptops"')]
    assert 'data-node="hr"' in setup and 'data-node="badge"' in setup


def test_a_linear_plan_is_a_chain_whose_earlier_nodes_are_done() -> None:
    plan = {"nodes": [{"id": n, "action": "test.noop"} for n in ("a", "b", "c")]}
    states = node_states(
        plan=plan, position=1, run_status="running", current_node="b", steps=[], requests=[]
    )
    assert states == {"a": "done", "b": "current"}
    html = render_graph(plan, states)
    assert html.count('<ol class="agentos-chain">') == 1
    assert html.index('data-node="a"') < html.index('data-node="b"') < html.index('data-node="c"')


def test_a_rejected_gate_is_drawn_rejected_not_failed() -> None:
    plan = {"nodes": [{"id": "gate", "type": "approval"}, {"id": "b", "action": "test.noop"}]}
    rejected = type("Request", (), {"status": "rejected", "node_id": "gate"})()
    states = node_states(
        plan=plan,
        position=0,
        run_status="failed",
        current_node="gate",
        steps=[],
        requests=[rejected],
    )
    assert states == {"gate": "rejected"}


def test_file_changes_read_as_before_and_after_with_short_hashes() -> None:
    digest = "8dc882f0642baac344db2f58bfc57febb19bba2b218c3282a61474ac4ecbe3b4"
    html = readable(
        {
            "changes": [
                {
                    "op": "move",
                    "source": "budget.xlsx",
                    "target": "Spreadsheets/budget.xlsx",
                    "sha256_before": digest,
                    "sha256_after": digest,
                },
                {"op": "delete", "source": "draft.tmp", "sha256_before": digest},
            ],
            "count": 2,
            "dry_run": False,
        }
    )
    assert "<dt>count</dt><dd>2</dd>" in html and "<dt>dry_run</dt><dd>no</dd>" in html
    assert "<td><code>budget.xlsx</code></td><td>→ <code>Spreadsheets/budget.xlsx</code>" in html
    assert "(unchanged)" in html and "(removed)" in html
    assert f"<code>{digest[:12]}…</code>" in html
    assert f'data-copy="{digest}"' in html
    assert "{'op'" not in html and "sha256_after" not in html


def test_readable_values_are_escaped_and_the_raw_json_is_behind_a_toggle() -> None:
    html = readable_with_raw({"name": "<script>alert(1)</script>", "rows": [{"a": 1}, {"b": 2}]})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<table class="agentos-table agentos-records">' in html
    assert '<details class="agentos-raw"><summary>raw JSON</summary>' in html


def test_a_graph_runs_boxes_follow_the_engines_lanes(tmp_path, operator, reviewer) -> None:  # type: ignore[no-untyped-def]
    """A gate waiting in one lane, the other lane done: the picture says so, box by box."""
    ledger = tmp_path / "ledger"

    def write(node_id: str) -> dict:
        return {
            "id": node_id,
            "action": "test.ledger_append",
            "params": {"ledger": str(ledger), "line": node_id},
        }

    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {"id": "gate", "type": "approval", "title": "Go?"},
                            write("badge"),
                        ]
                    },
                    {"nodes": [write("hr")]},
                ],
            },
            write("after"),
        ]
    }
    run = run_create(mode="autonomous", requester=operator, plan=plan, context={})
    run = advance(run)
    html = client_for(operator).get(live_url(run)).content.decode()

    def state_of(node_id: str) -> str:
        match = re.search(rf'state-(\w+)" data-node="{node_id}"', html)
        assert match, node_id
        return match.group(1)

    assert (state_of("gate"), state_of("hr"), state_of("badge")) == ("waiting", "done", "pending")
    assert state_of("after") == "pending"
    approval_decide(request_id=pending_request(run).pk, actor=reviewer, decision="approve")
    run = advance(run)
    html = client_for(operator).get(live_url(run)).content.decode()
    assert {state_of(n) for n in ("setup", "gate", "badge", "hr", "after")} == {"done"}


def test_map_items_fold_onto_one_box_with_the_state_that_needs_an_eye() -> None:
    from workflows.picture import states_by_node_id

    folded = states_by_node_id(
        {
            "orders": "running",
            "orders[0]/ok": "done",
            "orders[1]/ok": "waiting",
            "orders[2]/ok": "pending",
            "orders[0]/ship": "done",
            "orders[1]/ship": "pending",
            "after": "pending",
        }
    )
    assert folded == {"orders": "running", "ok": "waiting", "ship": "running", "after": "pending"}
