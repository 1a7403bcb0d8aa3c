"""The operations dashboard in a real Chromium, against daphne: drawn and live."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from workflows.models import Run, Step

pytestmark = [pytest.mark.browser]


def seed(gated_run, reviewer) -> None:  # type: ignore[no-untyped-def]
    """Known activity: decided and waiting requests, finished and failed steps."""
    for wait in (90, 400, 2400):
        run = gated_run(assign_to="Reviewers")
        request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
        ApprovalRequest.objects.filter(pk=request.pk).update(
            created_at=timezone.now() - timedelta(seconds=wait)
        )
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    gated_run(assign_to="Finance", due_in_s=60)
    ApprovalRequest.objects.filter(status=RequestStatus.PENDING).update(
        due_at=timezone.now() - timedelta(minutes=5)
    )
    run = Run.objects.order_by("id").first()
    now = timezone.now()
    for i in range(40):
        Step.objects.create(
            run=run,
            node_id=f"s{i}",
            position=i,
            action=("files.move", "api.request", "browser.fill_form")[i % 3],
            status="failed" if i % 7 == 0 else "succeeded",
            idempotency_key=f"s{i}",
            started_at=now - timedelta(minutes=i % 50),
            finished_at=now - timedelta(minutes=i % 50),
            duration_ms=300 + 40 * i,
        )


def test_the_dashboard_draws_every_panel_and_follows_new_requests_live(
    gated_run,
    reviewer,
    auditor,
    daphne,
    orm,
    browser,
    tmp_path: Path,
) -> None:
    orm(lambda: seed(gated_run, reviewer))
    shots = Path(os.environ.get("AGENTOS_SCREENSHOT_DIR") or tmp_path)
    context = browser.new_context(base_url=daphne.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/operations/")
    page.fill("#id_username", "auditor")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/operations/")
    page.wait_for_function("document.getElementById('live-status').textContent === 'live'")
    for chart in ("chart-runs", "chart-steps", "chart-failures", "chart-requests"):
        assert page.evaluate(f"!!Chart.getChart('{chart}')"), chart
    # Four runs were created, ran and paused at their gates; three of them
    # were resumed (queued again): each run counts once per status and hour.
    reached = (
        "Object.fromEntries(Chart.getChart('chart-runs').data.datasets"
        ".map((d) => [d.label, d.data.reduce((a, b) => a + b, 0)]))"
    )
    totals = page.evaluate(reached)
    assert totals["waiting"] == totals["running"] == 4, totals
    assert totals["succeeded"] == totals["failed"] == 0, totals
    drawn = page.evaluate("Chart.getChart('chart-requests').data.labels")
    assert set(drawn) == {"Finance", "Reviewers"} or "Finance" in drawn
    assert page.text_content("#card-waiting").strip() == "1"
    assert "Finance" in page.text_content("#oldest-waiting")
    assert (
        page.locator("#oldest-waiting a")
        .first.get_attribute("href")
        .startswith("/admin/approvals/approvalrequest/")
    )
    page.screenshot(path=str(shots / "operations-dashboard.png"), full_page=True)

    # A run pauses elsewhere: the waiting figure moves without a reload.
    orm(lambda: gated_run(assign_to="Reviewers"))
    page.wait_for_function(
        "document.getElementById('card-waiting').textContent.trim() === '2'", timeout=15000
    )
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.evaluate(reached)["waiting"] == 5

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways at 390 px ({width} px wide)"
    page.screenshot(path=str(shots / "operations-dashboard-390.png"), full_page=True)
    context.close()


def test_the_sla_report_and_the_workers_admin_in_a_browser(
    gated_run,
    reviewer,
    auditor,
    daphne,
    orm,
    browser,
    tmp_path: Path,
) -> None:
    from observability.heartbeats import heartbeat_beat
    from observability.models import ProcessKind, WorkerHeartbeat

    def world() -> None:
        seed(gated_run, reviewer)
        heartbeat_beat(name="host-a:101:aa11", kind=ProcessKind.WORKER)
        heartbeat_beat(name="host-a:102:bb22", kind=ProcessKind.WORKER)
        heartbeat_beat(name="host-a:100:web0", kind=ProcessKind.WEB)
        WorkerHeartbeat.objects.filter(name="host-a:102:bb22").update(
            last_seen=timezone.now() - timedelta(minutes=5)
        )
        Run.objects.filter(pk=Run.objects.order_by("id").first().pk).update(
            status="running",
            lease_owner="host-a:102:bb22",
            lease_expires_at=timezone.now() + timedelta(seconds=20),
        )

    orm(world)
    shots = Path(os.environ.get("AGENTOS_SCREENSHOT_DIR") or tmp_path)
    context = browser.new_context(base_url=daphne.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/operations/sla/")
    page.fill("#id_username", "auditor")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/operations/sla/")
    rows = page.locator("#sla-table tbody tr")
    assert rows.count() == 3  # the plan workflow, Finance, Reviewers
    assert "Reviewers" in page.text_content("#sla-table")
    with page.expect_download() as download:
        page.click("#sla-csv")
    assert download.value.suggested_filename.startswith("agentos-sla-")
    page.screenshot(path=str(shots / "sla-report.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    page.screenshot(path=str(shots / "sla-report-390.png"), full_page=True)

    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/admin/observability/workerheartbeat/")
    assert "held by a dead worker" in page.text_content("#held-by-dead")
    assert page.locator("#result_list tbody tr").count() == 3
    page.screenshot(path=str(shots / "workers-admin.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(shots / "workers-admin-390.png"), full_page=True)
    context.close()
