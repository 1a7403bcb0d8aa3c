"""Deciding approval requests in the admin, through approvals.services only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from approvals.models import ApprovalRequest
from tests.admin.support import client_for
from tests.support.runs import advance, pending_request
from workflows.models import Event, Run
from workflows.services import run_create

pytestmark = pytest.mark.django_db


def change_url(request: ApprovalRequest) -> str:
    return reverse("admin:approvals_approvalrequest_change", args=[request.pk])


def test_a_reviewer_sees_the_requested_fields_as_inputs(reviewer, input_run) -> None:
    request = pending_request(input_run)
    page = client_for(reviewer).get(change_url(request)).content.decode()

    assert 'name="values-laptop_model"' in page and 'maxlength="40"' in page
    assert 'name="values-quantity"' in page and 'type="number"' in page
    assert 'name="decision"' in page and 'name="comment"' in page
    assert 'name="resolution"' not in page


def test_approving_with_values_resumes_the_run(reviewer, input_run) -> None:
    request = pending_request(input_run)

    response = client_for(reviewer).post(
        change_url(request),
        {
            "decision": "approve",
            "values-laptop_model": "ThinkPad X1",
            "values-quantity": "2",
            "comment": "fine",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:workflows_run_change", args=[input_run.pk])
    request.refresh_from_db()
    assert request.status == "approved" and request.decided_by == reviewer
    assert request.values == {"laptop_model": "ThinkPad X1", "quantity": 2}
    input_run.refresh_from_db()
    assert input_run.status == "queued"
    assert input_run.context == {"laptop_model": "ThinkPad X1", "quantity": 2}
    assert Event.objects.filter(run=input_run, type="approval.decided").count() == 1


def test_bad_values_are_shown_beside_the_fields(reviewer, input_run) -> None:
    request = pending_request(input_run)

    response = client_for(reviewer).post(
        change_url(request),
        {"decision": "approve", "values-laptop_model": "", "values-quantity": "9"},
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "field-values-laptop_model" in page and "This field is required." in page
    assert "less than or equal to 5" in page
    request.refresh_from_db()
    assert request.status == "pending"


def test_rejecting_needs_a_comment(reviewer, waiting_run) -> None:
    request = pending_request(waiting_run)
    client = client_for(reviewer)

    response = client.post(change_url(request), {"decision": "reject", "comment": "  "})

    assert response.status_code == 200
    assert "a reason is required to reject" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "pending"

    response = client.post(change_url(request), {"decision": "reject", "comment": "no budget"})

    assert response.status_code == 302
    request.refresh_from_db()
    waiting_run.refresh_from_db()
    assert request.status == "rejected" and request.comment == "no budget"
    assert waiting_run.status == "failed"


def test_a_decided_request_is_read_only(reviewer, waiting_run) -> None:
    request = pending_request(waiting_run)
    client = client_for(reviewer)
    client.post(change_url(request), {"decision": "approve"})

    page = client.get(change_url(request)).content.decode()
    assert 'name="decision"' not in page and "Approved" in page

    response = client.post(
        change_url(request), {"decision": "reject", "comment": "late"}, follow=True
    )
    assert "Not decided: this request was already approved by reviewer" in (
        response.content.decode()
    )
    request.refresh_from_db()
    assert request.status == "approved"


def test_an_auditor_reads_but_cannot_decide(auditor, waiting_run) -> None:
    request = pending_request(waiting_run)
    client = client_for(auditor)

    page = client.get(change_url(request))
    assert page.status_code == 200
    assert 'name="decision"' not in page.content.decode()
    assert "OK for Ada Lovelace?" in page.content.decode()

    forged = client.post(change_url(request), {"decision": "approve"})

    assert forged.status_code == 403
    request.refresh_from_db()
    assert request.status == "pending"


def test_the_requester_cannot_approve_their_own_run(roles, waiting_run) -> None:
    """The operator who started the run is also a reviewer here: four-eyes still holds."""
    operator = waiting_run.requester
    operator.groups.add(roles["Reviewers"])
    operator = get_user_model().objects.get(pk=operator.pk)  # fresh permission cache
    request = pending_request(waiting_run)
    client = client_for(operator)

    page = client.get(change_url(request)).content.decode()
    assert "you started this run" in page and 'name="decision"' not in page

    response = client.post(change_url(request), {"decision": "approve"}, follow=True)
    assert "Not decided: you started this run" in response.content.decode()
    assert Run.objects.get(pk=waiting_run.pk).status == "waiting"


def test_the_approval_list_renders(
    auditor, waiting_run, input_run, django_assert_max_num_queries
) -> None:
    client = client_for(auditor)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("admin:approvals_approvalrequest_changelist"))
    page = response.content.decode()
    assert "OK for Ada Lovelace?" in page and "Which laptop?" in page
    assert "Reviewers" in page


def test_nobody_adds_or_deletes_requests(superuser, waiting_run) -> None:
    client = client_for(superuser)
    request = pending_request(waiting_run)
    assert client.get(reverse("admin:approvals_approvalrequest_add")).status_code == 403
    delete = reverse("admin:approvals_approvalrequest_delete", args=[request.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ApprovalRequest.objects.filter(pk=request.pk).exists()


def test_a_mode_gate_shows_the_action_and_params(reviewer, operator) -> None:
    run = advance(
        run_create(
            mode="assisted",
            requester=operator,
            plan={
                "nodes": [
                    {"id": "danger", "action": "test.risky", "params": {"target": "prod-db"}}
                ]
            },
        )
    )
    page = client_for(reviewer).get(change_url(pending_request(run))).content.decode()

    assert "test.risky" in page and "prod-db" in page and "&quot;risk&quot;" in page
    assert 'name="decision"' in page


def test_an_unknown_outcome_is_resolved_in_the_admin(reviewer, operator, tmp_path) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "once",
                        "action": "test.slow_first_once",
                        "params": {"ledger": str(tmp_path / "ledger"), "seconds": 30},
                        "timeout_s": 0.5,
                        "outputs": {"done_attempt": "attempt"},
                    }
                ]
            },
        )
    )
    request = pending_request(run)
    assert request.kind == "unknown_outcome"
    client = client_for(reviewer)
    page = client.get(change_url(request)).content.decode()
    assert 'name="resolution"' in page and 'name="values-attempt"' in page

    no_choice = client.post(change_url(request), {"decision": "approve"})
    assert "choose retry, mark_done or fail" in no_choice.content.decode()

    no_outputs = client.post(
        change_url(request), {"decision": "approve", "resolution": "mark_done"}
    )
    assert no_outputs.status_code == 200
    assert 'class="form-row errors field-values-attempt"' in no_outputs.content.decode()

    done = client.post(
        change_url(request),
        {"decision": "approve", "resolution": "mark_done", "values-attempt": "7"},
    )

    assert done.status_code == 302
    run.refresh_from_db()
    assert run.status == "queued" and run.context == {"done_attempt": 7}
    assert run.steps.get().status == "succeeded"


def test_rejecting_an_input_request_needs_no_values(reviewer, input_run) -> None:
    request = pending_request(input_run)
    client = client_for(reviewer)

    response = client.post(
        change_url(request), {"decision": "reject", "values-laptop_model": "typed"}
    )

    page = response.content.decode()
    assert "a reason is required to reject" in page
    assert "This field is required." not in page
    assert 'value="typed"' in page


def test_the_admin_decides_what_the_reviewer_saw(reviewer, operator, tmp_path) -> None:
    """The decide page shows what approving lets run, and carries its digest."""
    plan = {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "Write?"},
            {
                "id": "write",
                "action": "test.ledger_append",
                "params": {"ledger": str(tmp_path / "l"), "line": "hello"},
            },
        ]
    }
    run = advance(run_create(mode="autonomous", requester=operator, plan=plan))
    request = pending_request(run)
    assert request.digest
    client = client_for(reviewer)
    page = client.get(change_url(request)).content.decode()
    assert "What approving lets run" in page and "<dt>line</dt><dd>hello</dd>" in page
    assert f'value="{request.digest}"' in page  # the digest travels with the form
    stale = client.post(change_url(request), {"decision": "approve", "digest": "0" * 64})
    assert "review it again" in stale.content.decode()
    request.refresh_from_db()
    assert request.status == "pending"
