"""Runs in the admin: read-only records, a bounded number of queries, cancel, evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from approvals.services import approval_decide
from tests.admin.support import client_for
from tests.support.runs import advance, pending_request
from workflows.models import Event, Run, Step
from workflows.services import run_create

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:workflows_run_changelist")


def change_url(run: Run) -> str:
    return reverse("admin:workflows_run_change", args=[run.pk])


def cancel_url(run: Run) -> str:
    return reverse("admin:workflows_run_cancel", args=[run.pk])


@pytest.fixture
def many_runs(gated_workflow, operator) -> list[Run]:  # type: ignore[no-untyped-def]
    return [
        run_create(workflow=gated_workflow, context={"employee_name": f"P{i}"}, requester=operator)
        for i in range(6)
    ]


@pytest.mark.parametrize("who", ["operator", "auditor", "reviewer"])
def test_the_run_list_renders_in_a_bounded_number_of_queries(
    request, who, many_runs, waiting_run, django_assert_max_num_queries
) -> None:
    client = client_for(request.getfixturevalue(who))
    with django_assert_max_num_queries(10):
        response = client.get(LIST_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "gated v1" in page and "Waiting for a person" in page
    assert '<progress value="0" max="1"></progress> 0/1' in page
    assert f'href="{reverse("admin:workflows_run_add")}"' not in page


def test_the_run_list_filters_and_searches(operator, many_runs, waiting_run) -> None:
    client = client_for(operator)
    waiting = client.get(LIST_URL, {"status__exact": "waiting"})
    assert list(waiting.context["cl"].result_list) == [waiting_run]
    by_id = client.get(LIST_URL, {"q": str(waiting_run.pk)})
    assert list(by_id.context["cl"].result_list) == [waiting_run]
    by_user = client.get(LIST_URL, {"q": "operator"})
    assert by_user.context["cl"].result_count == 7
    by_node = client.get(LIST_URL, {"q": "nosuchnode"})
    assert by_node.context["cl"].result_count == 0
    by_workflow = client.get(
        LIST_URL, {"workflow__id__exact": waiting_run.workflow_id, "mode__exact": "autonomous"}
    )
    assert by_workflow.context["cl"].result_count == 7


@pytest.mark.parametrize("who", ["operator", "auditor"])
def test_the_run_page_shows_everything_read_only(
    request, who, waiting_run, django_assert_max_num_queries
) -> None:
    client = client_for(request.getfixturevalue(who))
    with django_assert_max_num_queries(11):
        response = client.get(change_url(waiting_run))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ada Lovelace" in page  # context
    assert "run.paused" in page and "run.created" in page  # events
    assert waiting_run.last_hash[:12] in page  # hash prefix
    assert "OK for Ada Lovelace?" in page  # approval request
    assert "<code>gate</code>" in page  # plan
    assert 'name="_save"' not in page  # nothing to save
    assert ("Cancel this run" in page) is (who == "operator")


def test_runs_cannot_be_added_changed_or_deleted(superuser, waiting_run) -> None:
    client = client_for(superuser)
    assert client.get(reverse("admin:workflows_run_add")).status_code == 403
    assert client.post(change_url(waiting_run), {"status": "succeeded"}).status_code == 403
    delete = reverse("admin:workflows_run_delete", args=[waiting_run.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    waiting_run.refresh_from_db()
    assert waiting_run.status == "waiting"


def test_the_cancel_button_cancels_through_the_service(operator, waiting_run) -> None:
    response = client_for(operator).post(
        cancel_url(waiting_run), {"reason": "wrong person"}, follow=True
    )

    assert response.status_code == 200
    assert f"Run {waiting_run.pk} is cancelled." in response.content.decode()
    waiting_run.refresh_from_db()
    assert waiting_run.status == "cancelled"
    event = Event.objects.get(run=waiting_run, type="run.cancelled")
    assert event.actor == operator and event.data["reason"] == "wrong person"
    assert pending_request_count(waiting_run) == 0


def pending_request_count(run: Run) -> int:
    return run.approval_requests.filter(status="pending").count()


def test_cancelling_a_finished_run_is_a_clear_error(operator, reviewer, waiting_run) -> None:
    approval_decide(request_id=pending_request(waiting_run).pk, actor=reviewer, decision="approve")
    run = advance(waiting_run)
    assert run.status == "succeeded"

    response = client_for(operator).post(cancel_url(run), {"reason": "late"}, follow=True)

    assert response.status_code == 200
    assert "was not cancelled: a succeeded run cannot become cancelled" in (
        response.content.decode()
    )
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_cancel_needs_the_permission_and_a_post(reviewer, operator, waiting_run) -> None:
    assert client_for(reviewer).post(cancel_url(waiting_run)).status_code == 403
    assert client_for(operator).get(cancel_url(waiting_run)).status_code == 405
    waiting_run.refresh_from_db()
    assert waiting_run.status == "waiting"


def test_the_list_action_cancels_and_reports_refusals(operator, many_runs, waiting_run) -> None:
    already = many_runs[0]
    client = client_for(operator)
    client.post(cancel_url(already))
    selected = [already.pk, waiting_run.pk, many_runs[1].pk]

    response = client.post(
        LIST_URL, {"action": "cancel_runs", "_selected_action": selected}, follow=True
    )

    page = response.content.decode()
    assert "Not cancelled: run" in page and "a cancelled run cannot become cancelled" in page
    statuses = dict(Run.objects.filter(pk__in=selected).values_list("pk", "status"))
    assert set(statuses.values()) == {"cancelled"}


def test_the_cancel_action_is_hidden_without_the_permission(auditor, waiting_run) -> None:
    response = client_for(auditor).post(
        LIST_URL, {"action": "cancel_runs", "_selected_action": [waiting_run.pk]}
    )
    assert response.status_code in (200, 302)
    waiting_run.refresh_from_db()
    assert waiting_run.status == "waiting"


@pytest.fixture
def evidence_step(waiting_run) -> Step:  # type: ignore[no-untyped-def]
    step = Step.objects.create(
        run=waiting_run,
        node_id="gate",
        position=0,
        action="test.noop",
        status="succeeded",
        idempotency_key="k",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    folder = Path(settings.MEDIA_ROOT) / "runs" / str(waiting_run.pk) / str(step.pk)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.txt").write_text("evidence body")
    rel = str((folder / "report.txt").relative_to(settings.MEDIA_ROOT))
    step.evidence = {
        "files": [
            {"name": "report.txt", "sha256": "ab" * 32, "bytes": 13, "path": rel},
            {"name": "passwd", "path": "../../../../etc/passwd"},
        ]
    }
    step.save()
    return step


def evidence_url(step: Step, index: int) -> str:
    return reverse("admin:workflows_run_evidence", args=[step.run_id, step.pk, index])


def test_evidence_is_served_to_those_who_may_view_the_run(auditor, evidence_step) -> None:
    client = client_for(auditor)
    page = client.get(change_url(evidence_step.run)).content.decode()
    assert evidence_url(evidence_step, 0) in page

    response = client.get(evidence_url(evidence_step, 0))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"evidence body"
    assert client.get(evidence_url(evidence_step, 1)).status_code == 404  # outside the root
    assert client.get(evidence_url(evidence_step, 7)).status_code == 404


def test_evidence_is_refused_to_staff_without_view_run(evidence_step) -> None:
    outsider = get_user_model().objects.create_user("outsider", password="pw", is_staff=True)
    assert client_for(outsider).get(evidence_url(evidence_step, 0)).status_code == 403
    anonymous = client_for(outsider)
    anonymous.logout()
    assert anonymous.get(evidence_url(evidence_step, 0)).status_code == 302  # to the login
