"""The SLA report (admin page, CSV, API) and the dashboard's data and permissions."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services import token_create
from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide, requests_expire
from observability.reports import dashboard_data, runs_over_time, sla_report
from tests.support.runs import advance, pending_request
from workflows.models import Event

pytestmark = pytest.mark.django_db


def opened_ago(request: ApprovalRequest, seconds: float) -> None:
    ApprovalRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.fixture
def activity(gated_run, reviewer):  # type: ignore[no-untyped-def]
    """Three Reviewers requests decided after 60 s, 120 s and 600 s; one Finance
    request escalated to CFO; one Finance request still pending and overdue."""
    for wait in (60, 120, 600):
        request = pending_request(gated_run())
        opened_ago(request, wait)
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    late = pending_request(
        gated_run(assign_to="Finance", due_in_s=60, on_timeout="escalate", escalate_to="CFO")
    )
    ApprovalRequest.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(seconds=5))
    assert requests_expire() == 1
    overdue = pending_request(gated_run(assign_to="Finance", due_in_s=60))
    ApprovalRequest.objects.filter(pk=overdue.pk).update(
        due_at=timezone.now() - timedelta(seconds=5)
    )


def by_name(rows) -> dict:  # type: ignore[no-untyped-def]
    return {(r.by, r.name): r for r in rows}


def test_the_sla_report_counts_requests_decisions_times_and_escalations(activity) -> None:
    now = timezone.now()
    rows = by_name(sla_report(now - timedelta(days=1), now + timedelta(minutes=1)))
    reviewers = rows[("group", "Reviewers")]
    assert (reviewers.requests, reviewers.decided, reviewers.overdue) == (3, 3, 0)
    assert 119 <= reviewers.median_s < 130 and 599 <= reviewers.p95_s < 610
    assert rows[("group", "CFO")].escalated == 1 and rows[("group", "CFO")].timed_out == 1
    finance = rows[("group", "Finance")]
    assert (finance.requests, finance.decided, finance.overdue) == (1, 0, 1)
    plan = rows[("workflow", "plan")]
    assert (plan.requests, plan.decided, plan.overdue, plan.escalated) == (5, 3, 2, 1)
    # A period before any of it is empty.
    assert sla_report(now - timedelta(days=9), now - timedelta(days=8)) == []


def test_the_sla_csv_from_the_admin_and_the_api_agree(activity, auditor, operator) -> None:
    client = Client()
    client.force_login(auditor)
    today = timezone.now().date().isoformat()
    response = client.get(f"/admin/operations/sla/?start={today}&end={today}&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"agentos-sla-{today}-{today}.csv" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {(r["by"], r["name"]) for r in table} >= {("group", "Reviewers"), ("workflow", "plan")}
    reviewers = next(r for r in table if r["name"] == "Reviewers")
    assert reviewers["requests"] == "3" and reviewers["decided"] == "3"

    secret = token_create(user=operator, name="sla").plain
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    data = api.get(f"/api/v1/reports/sla?start={today}&end={today}").json()
    assert data["start"] == today and data["end"] == today
    assert {(r["by"], r["name"]): r["requests"] for r in data["items"]} == {
        (r["by"], r["name"]): int(r["requests"]) for r in table
    }
    as_csv = api.get(f"/api/v1/reports/sla?start={today}&end={today}&format=csv")
    assert as_csv.status_code == 200 and as_csv.content == response.content


def test_a_bad_period_is_a_400_naming_the_field(auditor, operator) -> None:
    client = Client()
    client.force_login(auditor)
    page = client.get("/admin/operations/sla/?start=yesterday")
    assert page.status_code == 400 and b"start: give a date as YYYY-MM-DD" in page.content
    csv_bad = client.get("/admin/operations/sla/?end=2026-13-01&format=csv")
    assert csv_bad.status_code == 400 and csv_bad.json()["errors"] == {
        "end": "give a date as YYYY-MM-DD"
    }
    secret = token_create(user=operator, name="sla").plain
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    for query, field in [
        ("start=2026-02-30", "start"),
        ("start=2026-05-02&end=2026-05-01", "start"),
        ("start=2020-01-01&end=2026-01-01", "start"),
        ("format=xml", "format"),
    ]:
        response = api.get(f"/api/v1/reports/sla?{query}")
        assert response.status_code in (400, 422), (query, response.status_code)
        assert field in {e["field"] for e in response.json()["errors"]}, (query, response.json())


def test_only_operators_auditors_and_superusers_see_the_operations_pages(
    reviewer, operator, auditor, superuser, roles
) -> None:
    from tests.support.fixtures import make_user as _user

    nobody = _user(roles, "nobody", None)
    for path in ("/admin/operations/", "/admin/operations/data.json", "/admin/operations/sla/"):
        assert Client().get(path).status_code == 302  # to the login page
        for user, allowed in [
            (operator, True),
            (auditor, True),
            (superuser, True),
            (reviewer, False),
            (nobody, False),
        ]:
            client = Client()
            client.force_login(user)
            status = client.get(path).status_code
            assert status == (200 if allowed else 403), (path, user.username, status)


def test_the_dashboard_data_has_every_panel(activity, auditor) -> None:
    data = dashboard_data()
    series = data["runs_over_time"]["series"]
    # Five runs were created (queued), taken by a worker (running) and paused
    # at their gates (waiting) once each; three were resumed (queued again).
    assert sum(series["running"]) == sum(series["waiting"]) == 5
    assert sum(series["queued"]) == len(hours_reached(["run.created", "run.resumed"]))
    assert sum(series["succeeded"]) == sum(series["failed"]) == 0
    assert data["runs_now"]["waiting"] == 2 and data["runs_now"]["queued"] == 3
    assert len(data["steps_per_minute"]["counts"]) == 60
    groups = {r["group"]: r for r in data["requests_by_group"]}
    assert groups["Finance"] == {"group": "Finance", "pending": 1, "overdue": 1}
    assert groups["CFO"]["pending"] == 1
    assert data["escalations"] == {"day": 1, "week": 1}
    oldest = data["oldest_waiting"]
    assert [r["group"] for r in oldest] == ["CFO", "Finance"]
    assert oldest[0]["url"].startswith("/admin/approvals/approvalrequest/")
    client = Client()
    client.force_login(auditor)
    page = client.get("/admin/operations/")
    assert b'id="chart-runs"' in page.content and b"vendor/chart.umd.min.js" in page.content
    assert client.get("/admin/operations/data.json").json()["escalations"]["day"] == 1


def hours_reached(types: list[str]) -> set[tuple[datetime, int]]:
    """Return the (hour, run) pairs of these run events, as the panel counts them."""
    rows = Event.objects.filter(type__in=types).values_list("at", "run_id")
    return {(at.replace(minute=0, second=0, microsecond=0), run) for at, run in rows}


def test_runs_by_status_over_time_counts_runs_that_reached_each_status_per_hour(
    gated_run, reviewer
) -> None:
    run = gated_run()
    approval_decide(request_id=pending_request(run).pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == "succeeded", run.error
    other = gated_run()  # a second run, still waiting
    now = timezone.now()
    events = Event.objects.filter(run__in=[run, other], type__startswith="run.")
    assert {e.type for e in events} >= {"run.created", "run.running", "run.paused"}
    assert {e.type for e in events.filter(run=run)} >= {"run.resumed", "run.succeeded"}

    data = runs_over_time(now)
    assert len(data["labels"]) == 24 and data["labels"][-1] == now.strftime("%H:00")
    series = data["series"]
    hours = {e.at.replace(minute=0, second=0, microsecond=0) for e in events}
    if len(hours) == 1:  # the usual case: all within this hour
        # Created and resumed (both queued) count once; the first run ran
        # twice (before and after its gate) and counts once.
        assert {s: v[-1] for s, v in series.items()} == {
            "queued": 2,
            "running": 2,
            "waiting": 2,
            "succeeded": 1,
            "failed": 0,
            "cancelled": 0,
        }
    else:  # the hour turned while the test ran: each (hour, run) counts once
        assert sum(series["queued"]) == len(
            hours_reached(["run.created", "run.resumed", "run.requeued"])
        )
        assert sum(series["succeeded"]) == 1
    # An hour later the same figures sit one slot to the left; a day later
    # they are out of the window.
    later = runs_over_time(now + timedelta(hours=1))["series"]
    assert {s: v[:-1] for s, v in later.items()} == {s: v[1:] for s, v in series.items()}
    assert all(v[-1] == 0 for v in later.values())
    gone = runs_over_time(now + timedelta(days=1))["series"]
    assert all(n == 0 for v in gone.values() for n in v)


def test_the_admin_index_links_the_dashboard_for_those_who_may_see_it(auditor, reviewer) -> None:
    for user, shown in [(auditor, True), (reviewer, False)]:
        client = Client()
        client.force_login(user)
        body = client.get("/admin/").content.decode()
        assert ('href="/admin/operations/"' in body) is shown, user.username


def test_the_dashboard_keeps_its_decision_times_a_minute_and_says_of_when(
    gated_run, reviewer
) -> None:
    from django.core.cache import cache

    from observability.reports import DECISION_TIMES_KEY

    first = dashboard_data()
    assert first["decision_times"] == [] and first["decision_times_at"] == first["at"]
    request = pending_request(gated_run())
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    again = dashboard_data()
    assert again["decision_times"] == [] and again["decision_times_at"] == first["at"]
    assert again["requests_by_group"] == []  # the other panels are live
    cache.delete(DECISION_TIMES_KEY)  # as the minute passing would
    later = dashboard_data()
    assert later["decision_times_at"] == later["at"]
    assert {(r["by"], r["name"], r["decided"]) for r in later["decision_times"]} == {
        ("workflow", "plan", 1),
        ("group", "Reviewers", 1),
    }


def test_a_timeout_that_rejects_by_itself_is_no_decision_in_the_sla(gated_run, reviewer) -> None:
    late = pending_request(gated_run(due_in_s=60, on_timeout="reject"))
    opened_ago(late, 600)
    ApprovalRequest.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(seconds=5))
    assert requests_expire() == 1
    late.refresh_from_db()
    assert late.status == RequestStatus.REJECTED and late.decided_by is None
    decided = pending_request(gated_run())
    opened_ago(decided, 120)
    approval_decide(request_id=decided.pk, actor=reviewer, decision="approve")

    now = timezone.now()
    rows = by_name(sla_report(now - timedelta(days=1), now + timedelta(minutes=1)))
    for row in (rows[("group", "Reviewers")], rows[("workflow", "plan")]):
        assert (row.requests, row.decided, row.timed_out, row.overdue) == (2, 1, 1, 1)
        assert 119 <= row.median_s < 130 and 119 <= row.p95_s < 130
