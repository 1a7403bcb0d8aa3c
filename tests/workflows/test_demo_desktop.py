"""The desktop demo workflows load with seed_demo and run on its demo files."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from workflows.engine import run_advance
from workflows.models import Workflow
from workflows.services import run_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(workspace: Path) -> Path:
    call_command("seed_demo", "--password", "pw", stdout=StringIO())
    return workspace / "demo"


def test_sales_report_pivots_and_charts_into_new_files(seeded: Path) -> None:
    from django.contrib.auth import get_user_model

    source = (seeded / "sales.xlsx").read_bytes()
    run = run_create(
        workflow=Workflow.objects.get(slug="sales-report"),
        context={"workbook": "demo/sales.xlsx"},
        requester=get_user_model().objects.get(username="operator"),
    )
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.context["formula_cells"] == 1
    rows = list(
        load_workbook(seeded / "out" / "sales-by-region.xlsx")["Pivot"].iter_rows(values_only=True)
    )
    assert [r[0] for r in rows] == ["region", "East", "North", "South", "West"]
    assert (seeded / "out" / "sales-chart.xlsx").exists()
    assert (seeded / "sales.xlsx").read_bytes() == source
    pivot = run.steps.get(node_id="pivot")
    assert pivot.evidence["files"][0]["name"] == "health.json"


def test_organize_downloads_previews_then_asks(seeded: Path) -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    run = run_create(
        workflow=Workflow.objects.get(slug="organize-downloads"),
        context={"folder": "demo/downloads", "by": "type"},
        requester=users.get(username="operator"),
    )
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    assert request.title == "Move 5 files in demo/downloads into folders by type?"
    assert sorted(p.name for p in (seeded / "downloads").iterdir()) == [
        "budget.xlsx",
        "draft.tmp",
        "notes.txt",
        "quote.pdf",
        "team.png",
    ]
    approval_decide(
        request_id=request.pk, actor=users.get(username="reviewer"), decision="approve"
    )
    # files.cleanup is high risk: the assisted mode asks once more before it.
    run_advance(run_id=run.pk)
    request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    assert request.purpose == "mode_gate"
    approval_decide(
        request_id=request.pk, actor=users.get(username="reviewer"), decision="approve"
    )
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert sorted(
        p.relative_to(seeded / "downloads").as_posix()
        for p in (seeded / "downloads").rglob("*")
        if p.is_file()
    ) == [
        "Documents/notes.txt",
        "Documents/quote.pdf",
        "Images/team.png",
        "Spreadsheets/budget.xlsx",
    ]
