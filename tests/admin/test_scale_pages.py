"""The run list, a run's page, the inbox and GET /runs at scale.

Their query counts do not grow with the number of rows, and no page counts a
whole table: the admin and the API cap their counts, the run page and the
inbox page through their rows.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import ApprovalRequest
from tests.admin.support import client_for
from workflows.admin.paging import CappedCountPaginator
from workflows.models import Run

pytestmark = pytest.mark.django_db

RUNS_URL = reverse("admin:workflows_run_changelist")
PAGES = [
    RUNS_URL,
    RUNS_URL + "?status__exact=waiting",
    RUNS_URL + "?q=scale-03",
    RUNS_URL + "?q=requester-01",
    RUNS_URL + "?mode__exact=assisted&status__exact=failed",
    "/inbox/",
    "/inbox/?workflow=scale-02",
    "/inbox/?overdue=1&kind=approval",
    "/inbox/?archive=1",
    "/api/v1/runs",
    "/api/v1/runs?status=waiting&workflow=scale-01",
]


def seed(runs: int) -> None:
    call_command("seed_scale", runs=runs, events=runs * 6)


def queries_per_page(client: Any) -> dict[str, int]:
    counts = {}
    for url in PAGES:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[url] = len(captured)
    return counts


def test_query_counts_do_not_grow_with_the_number_of_runs(admin_user) -> None:
    seed(60)
    reviewer = ApprovalRequest.objects.filter(assigned_user__isnull=False).first()
    client = client_for(admin_user)
    small = queries_per_page(client)
    seed(600)
    large = queries_per_page(client)

    assert large == small
    assert max(large.values()) <= 12
    assert reviewer is None or reviewer.pk  # seeding delegated some requests or none


def test_no_page_counts_past_the_cap(admin_user, monkeypatch) -> None:
    seed(120)
    monkeypatch.setattr(CappedCountPaginator, "cap", 30)
    monkeypatch.setattr("agentos_site.api_pagination.COUNT_CAP", 30)
    client = client_for(admin_user)

    with CaptureQueriesContext(connection) as captured:
        page = client.get(RUNS_URL)
    assert page.context["cl"].result_count == 31
    assert "more than 30 runs" in page.content.decode()
    assert not any(
        "COUNT(*)" in q["sql"] and "LIMIT" not in q["sql"] for q in captured.captured_queries
    ), "a count without a cap"

    body = client.get("/api/v1/runs?limit=10").json()
    assert (body["count"], body["count_exact"], body["next_offset"]) == (30, False, 10)
    last = client.get("/api/v1/runs?limit=50&offset=100").json()
    assert (last["count"], last["count_exact"], last["next_offset"]) == (120, True, None)
    assert len(last["items"]) == 20


def test_a_run_with_many_events_shows_them_a_page_at_a_time(admin_user) -> None:
    call_command("seed_scale", runs=4, events=15_100)
    run = Run.objects.order_by("-last_seq").first()
    assert run.last_seq == 5000
    client = client_for(admin_user)
    url = reverse("admin:workflows_run_change", args=[run.pk])

    with CaptureQueriesContext(connection) as captured:
        latest = client.get(url)
    page = latest.content.decode()
    assert len(latest.context["events"]) == 100
    assert "Events 4901–5000 of 5000." in page and "?events_upto=4900" in page
    assert "data-live" not in page or 'mark("#run-events-table tbody"' in page
    assert len(captured) <= 12

    older = client.get(url, {"events_upto": "150"})
    seqs = [row["event"].seq for row in older.context["events"]]
    assert seqs == list(range(51, 151))
    assert "?events_upto=50" in older.content.decode()
    assert client.get(url, {"events_upto": "junk"}).status_code == 200


def test_the_inbox_pages_through_thousands_of_requests(admin_user) -> None:
    seed(600)
    client = client_for(admin_user)
    pending = ApprovalRequest.objects.filter(status="pending").order_by("-created_at", "-id")
    first = client.get("/inbox/")
    assert [r.pk for r in first.context["rows"]] == list(pending.values_list("pk", flat=True)[:50])
    assert 'id="inbox-older"' in first.content.decode()
    second = client.get("/inbox/", {"page": "2"})
    assert [r.pk for r in second.context["rows"]] == list(
        pending.values_list("pk", flat=True)[50:100]
    )
    assert client.get("/inbox/", {"page": "x"}).context["page"] == 1
