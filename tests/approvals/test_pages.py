"""The inbox pages a reviewer decides from: readable first screen, no traps.

Titles read with the context's values, high-risk actions are marked, enum
fields start unchosen unless the schema gives a default, Approve and Reject
(with the reason beside it) come first, and after a decision the next
request is offered; j/k links lead through the queue.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from approvals.selectors import next_request, queue_neighbours
from approvals.services import approval_decide
from tests.admin.support import client_for
from tests.support.runs import advance, pending_request
from workflows.forms import schema_field
from workflows.services import run_create

pytestmark = pytest.mark.django_db


def selected_options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, name
    return re.findall(r'<option value="([^"]*)"[^>]*selected', select.group(1))


def test_a_required_enum_starts_unchosen_unless_the_schema_has_a_default() -> None:
    field = schema_field({"enum": ["MacBook", "ThinkPad"]}, name="model", required=True)
    assert field.choices[0] == ("", "Choose…") and field.initial is None
    assert field.clean("ThinkPad") == "ThinkPad"
    with pytest.raises(Exception, match="required"):
        field.clean("")
    chosen = schema_field(
        {"enum": ["MacBook", "ThinkPad"], "default": "ThinkPad"}, name="model", required=True
    )
    assert [value for value, _ in chosen.choices] == ["MacBook", "ThinkPad"]
    assert chosen.initial == "ThinkPad"


def test_the_request_page_preselects_no_model_and_refuses_a_careless_approve(
    operator, reviewer
) -> None:
    plan = {
        "nodes": [
            {
                "id": "ask",
                "type": "input",
                "title": "Which laptop for {{ name }}?",
                "fields": {"model": {"type": "string", "enum": ["MacBook", "ThinkPad"]}},
                "required": ["model"],
            }
        ]
    }
    run = advance(
        run_create(plan=plan, mode="autonomous", context={"name": "Ada"}, requester=operator)
    )
    request = pending_request(run)
    client = client_for(reviewer)
    url = reverse("inbox:request", args=[request.pk])
    page = client.get(url).content.decode()
    assert selected_options(page, "values-model") == [""]
    careless = client.post(url, {"decision": "approve", "values-model": "", "digest": ""})
    assert careless.status_code == 400 and "This field is required" in careless.content.decode()
    request.refresh_from_db()
    assert request.status == "pending"


def test_the_first_screen_reads_without_json_and_puts_the_decision_first(
    gated_run, reviewer
) -> None:
    run = gated_run()
    request = pending_request(run)
    page = client_for(reviewer).get(reverse("inbox:request", args=[request.pk])).content.decode()
    assert "Append hello?" in page and "{{" not in page  # titles and plan rendered
    assert page.index('id="decide"') < page.index('id="run-live"') < page.index('id="context"')
    reject_box = page[page.index('class="reject-box"') : page.index('id="reject"')]
    assert 'name="comment"' in reject_box and "Reason" in reject_box
    assert page.index('id="approve"') < page.index('id="reject"')
    assert "<dt>line</dt><dd>hello</dd>" in page  # the context as a list, not a dict
    assert "{&#x27;" not in page and "{'" not in page
    assert 'id="keyboard-help"' in page and 'aria-keyshortcuts="a"' in page


def test_a_high_risk_action_is_marked_on_the_list_and_the_request(operator, reviewer) -> None:
    run = advance(
        run_create(
            mode="assisted",
            requester=operator,
            plan={
                "nodes": [{"id": "danger", "action": "test.risky", "params": {"target": "prod"}}]
            },
        )
    )
    request = pending_request(run)
    client = client_for(reviewer)
    page = client.get(reverse("inbox:request", args=[request.pk])).content.decode()
    assert '<span class="badge risk-high" id="risk">High risk</span>' in page
    listing = client.get(reverse("inbox:list")).content.decode()
    assert 'class="risk-high-row"' in listing and "High risk" in listing
    # A high-risk request cannot be bulk-approved, so the list offers no bulk action.
    assert 'name="ids"' not in listing and '<p id="bulk-row" hidden>' in listing


def test_bulk_approve_is_offered_only_when_a_listed_request_allows_it(gated_run, reviewer) -> None:
    gated_run()
    listing = client_for(reviewer).get(reverse("inbox:list")).content.decode()
    assert 'name="ids"' in listing and '<p id="bulk-row">' in listing


def test_after_a_decision_the_next_request_is_offered_the_same_run_first(
    gated_run, reviewer, operator
) -> None:
    first, other = gated_run(), gated_run()
    client = client_for(reviewer)
    request = pending_request(first)
    response = client.post(
        reverse("inbox:request", args=[request.pk]),
        {"decision": "approve", "digest": request.digest},
        follow=True,
    )
    page = response.content.decode()
    assert "Approved: Append hello?" in page
    waiting = pending_request(other)
    assert (
        f'id="next-request">Next: <a href="{reverse("inbox:request", args=[waiting.pk])}"' in page
    )
    assert next_request(reviewer, request) == waiting
    approval_decide(request_id=waiting.pk, actor=reviewer, decision="approve")
    last = client.get(reverse("inbox:request", args=[waiting.pk])).content.decode()
    assert "Nothing else is waiting for you." in last


def test_j_and_k_lead_through_the_queue_in_the_inbox_order(gated_run, reviewer) -> None:
    oldest, middle, newest = (pending_request(gated_run()) for _ in range(3))
    assert queue_neighbours(reviewer, middle) == (newest, oldest)
    assert queue_neighbours(reviewer, newest) == (None, middle)
    page = client_for(reviewer).get(reverse("inbox:request", args=[middle.pk])).content.decode()
    assert f'href="{reverse("inbox:request", args=[oldest.pk])}" id="nav-next"' in page
    assert f'href="{reverse("inbox:request", args=[newest.pk])}" id="nav-prev"' in page


def test_the_empty_state_says_what_to_do(reviewer) -> None:
    client = client_for(reviewer)
    empty = client.get(reverse("inbox:list")).content.decode()
    assert '<span id="inbox-empty">Nothing waiting.</span>' in empty
    assert "appear here as soon as a run pauses" in empty
    filtered = client.get(reverse("inbox:list") + "?kind=input").content.decode()
    assert "No request matches these filters" in filtered
