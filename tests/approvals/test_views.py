"""The inbox pages: list, request page, deciding, read-only auditors, bulk."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from approvals.models import ApprovalRequest, RequestStatus
from tests.admin.support import client_for
from tests.support.runs import advance, pending_request
from workflows.services import run_create

pytestmark = pytest.mark.django_db


def test_the_inbox_needs_a_login(client) -> None:
    response = client.get(reverse("inbox:list"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_reviewer_sees_pending_requests_with_counts(gated_run, reviewer) -> None:
    run = gated_run(due_in_s=3600)
    response = client_for(reviewer).get(reverse("inbox:list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Append hello?" in body and f">{run.pk}<" in body
    assert 'id="count-pending">1<' in body
    fragment = client_for(reviewer).get(reverse("inbox:list") + "?fragment=1")
    assert (
        "<header>" not in fragment.content.decode()
        and "Append hello?" in fragment.content.decode()
    )


def test_filters_narrow_the_list(gated_run, reviewer) -> None:
    gated_run()
    client = client_for(reviewer)
    assert "Append hello?" in client.get(reverse("inbox:list") + "?kind=approval").content.decode()
    assert "Nothing waiting" in client.get(reverse("inbox:list") + "?kind=input").content.decode()
    assert "Nothing waiting" in client.get(reverse("inbox:list") + "?overdue=1").content.decode()
    assert "Nothing waiting" in client.get(reverse("inbox:list") + "?scope=mine").content.decode()


def test_the_request_page_shows_guarded_parameters_and_decides_on_post(
    gated_run, reviewer
) -> None:
    run = gated_run()
    request = pending_request(run)
    client = client_for(reviewer)
    url = reverse("inbox:request", args=[request.pk])
    page = client.get(url).content.decode()
    assert request.digest in page and "test.ledger_append" in page and 'id="approve"' in page
    assert pending_request(run).status == RequestStatus.PENDING  # GET never decides
    response = client.post(url, {"decision": "approve", "digest": request.digest})
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.decided_by == reviewer


def test_a_missing_required_field_is_shown_beside_the_field(input_run, reviewer) -> None:
    request = pending_request(input_run)
    response = client_for(reviewer).post(
        reverse("inbox:request", args=[request.pk]),
        {"decision": "approve", "values-quantity": "9"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "This field is required" in body
    assert "less than or equal to 5" in body
    assert pending_request(input_run).status == RequestStatus.PENDING


def test_rejecting_needs_a_reason(gated_run, reviewer) -> None:
    request = pending_request(gated_run())
    response = client_for(reviewer).post(
        reverse("inbox:request", args=[request.pk]), {"decision": "reject", "comment": " "}
    )
    assert response.status_code == 400 and "Give a reason to reject" in response.content.decode()


def test_an_auditor_sees_no_decide_controls_and_a_forged_post_is_refused(
    gated_run, auditor
) -> None:
    request = pending_request(gated_run())
    client = client_for(auditor)
    page = client.get(reverse("inbox:request", args=[request.pk])).content.decode()
    assert 'id="approve"' not in page and 'id="read-only"' in page
    listing = client.get(reverse("inbox:list")).content.decode()
    assert "Append hello?" in listing and 'name="ids"' not in listing
    forged = client.post(
        reverse("inbox:request", args=[request.pk]),
        {"decision": "approve", "digest": request.digest},
    )
    assert forged.status_code == 403
    assert client.post(reverse("inbox:bulk"), {"ids": [request.pk]}).status_code == 403
    assert pending_request(request.run).status == RequestStatus.PENDING


def test_a_second_decision_is_told_who_decided(gated_run, reviewer, reviewer2) -> None:
    request = pending_request(gated_run())
    url = reverse("inbox:request", args=[request.pk])
    client_for(reviewer).post(url, {"decision": "approve"})
    late = client_for(reviewer2).post(url, {"decision": "approve"})
    assert late.status_code == 409
    assert "already approved by reviewer" in late.content.decode()


def test_the_quorum_shows_one_of_two(gated_run, reviewer) -> None:
    request = pending_request(gated_run(quorum=2))
    client = client_for(reviewer)
    url = reverse("inbox:request", args=[request.pk])
    client.post(url, {"decision": "approve"})
    assert "1 of 2" in client.get(url).content.decode()


def test_bulk_approve_decides_low_risk_gates_one_by_one_and_refuses_high_risk(
    gated_run, reviewer, operator
) -> None:
    low = pending_request(gated_run())
    risky_run = advance(
        run_create(
            mode="assisted",
            requester=operator,
            plan={
                "nodes": [{"id": "danger", "action": "test.risky", "params": {"target": "prod"}}]
            },
        )
    )
    risky = pending_request(risky_run)
    response = client_for(reviewer).post(reverse("inbox:bulk"), {"ids": [low.pk, risky.pk]})
    assert response.status_code == 303
    low.refresh_from_db()
    risky.refresh_from_db()
    assert low.status == RequestStatus.APPROVED and low.decisions.get().digest == low.digest
    assert risky.status == RequestStatus.PENDING


def test_a_new_request_emails_those_who_may_decide_with_a_link(
    gated_run, reviewer, reviewer2, operator, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run = gated_run()
    request = ApprovalRequest.objects.get(run=run)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["reviewer2@example.com", "reviewer@example.com"]
    assert "operator@example.com" not in message.to  # the requester is not asked
    link = f"http://127.0.0.1:8000/inbox/requests/{request.pk}/"
    assert link in message.body
    client_for(reviewer).get(link.removeprefix("http://127.0.0.1:8000"))
    assert pending_request(run).status == RequestStatus.PENDING  # the link decides nothing
