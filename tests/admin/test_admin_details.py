"""Admin details: View site is the inbox, the index counts it, no meaningless
History or "Save and add another", and styled 403/404/500 pages."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from tests.admin.support import client_for
from tests.support.runs import pending_request

pytestmark = pytest.mark.django_db


def test_view_site_leads_to_the_inbox_and_the_index_counts_it(reviewer, waiting_run) -> None:
    page = client_for(reviewer).get(reverse("admin:index")).content.decode()
    assert '<a href="/inbox/">View site</a>' in page
    assert '<td id="index-pending">1</td>' in page
    assert f'href="{reverse("inbox:list")}?scope=mine"' in page


def test_the_index_shows_no_inbox_to_those_without_one(roles) -> None:
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    page = client_for(staff).get(reverse("admin:index")).content.decode()
    assert 'id="agentos-inbox"' not in page


def test_no_history_where_it_means_nothing(superuser, waiting_run, gated_workflow) -> None:
    client = client_for(superuser)
    request = pending_request(waiting_run)
    event = waiting_run.events.order_by("seq").first()
    for url in [
        reverse("admin:workflows_run_change", args=[waiting_run.pk]),
        reverse("admin:workflows_event_change", args=[event.pk]),
        reverse("admin:workflows_workflow_change", args=[gated_workflow.pk]),
    ]:
        page = client.get(url).content.decode()
        assert "historylink" not in page and ">History<" not in page, url
    workflow = client.get(reverse("admin:workflows_workflow_change", args=[gated_workflow.pk]))
    assert 'name="_addanother"' not in workflow.content.decode()
    assert 'name="_save"' in workflow.content.decode()
    # A decided request's read-only page links the run and the inbox, not History.
    from approvals.services import approval_decide
    from tests.support.fixtures import make_user as _user

    boss = _user(None, "boss", None, superuser=True)
    approval_decide(request_id=request.pk, actor=boss, decision="approve")
    page = client.get(reverse("admin:approvals_approvalrequest_change", args=[request.pk]))
    body = page.content.decode()
    assert ">History<" not in body and "Open in the inbox" in body


def test_the_error_pages_are_styled_and_helpful(reviewer, waiting_run) -> None:
    client = client_for(reviewer)
    missing = client.get("/inbox/requests/987654/")
    assert missing.status_code == 404
    body = missing.content.decode()
    assert "<h1>Not found</h1>" in body and "approvals/inbox.css" in body
    refused = client.post(reverse("admin:workflows_run_cancel", args=[waiting_run.pk]))
    assert refused.status_code == 403 and "<h1>Not allowed</h1>" in refused.content.decode()
    assert "Something went wrong on our side" in render_to_string("500.html")


def test_the_portals_index_is_styled_like_the_portals(client) -> None:
    page = client.get("/portals/").content.decode()
    assert "portals/portals.css" in page and 'class="portal-list"' in page
