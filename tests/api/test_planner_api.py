"""The planner over the API, and bare plans reviewed before they run."""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from workflows.engine import run_advance
from workflows.models import Run

pytestmark = pytest.mark.django_db


def test_draft_turns_text_into_a_validated_plan(as_operator, workspace: Path) -> None:
    response = as_operator.post("/plans/draft", {"text": "clean up Downloads"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["provider"] == "builtin" and body["valid"] is True and body["errors"] == []
    nodes = body["plan"]["nodes"]
    assert [n.get("action", n.get("type")) for n in nodes] == [
        "files.cleanup",
        "approval",
        "files.cleanup",
    ]
    assert nodes[0]["params"]["dry_run"] is True and nodes[2]["params"]["dry_run"] is False


def test_draft_answers_what_it_cannot_parse_with_the_phrasings_it_knows(as_operator) -> None:
    body = as_operator.post("/plans/draft", {"text": "make me a sandwich"}).json()
    assert body["plan"] is None and body["valid"] is False
    assert "move the PDFs in Downloads to Reports" in body["errors"][0]["message"]


def test_draft_refuses_an_empty_or_oversized_text_naming_the_field(as_operator) -> None:
    for text in ("", "x" * 4001):
        response = as_operator.post("/plans/draft", {"text": text})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "text"


def test_a_bare_plan_from_the_api_is_reviewed_before_it_runs(
    as_operator, reviewer, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("a")
    plan = {"nodes": [{"id": "hash", "action": "files.sha256", "params": {"path": "a.txt"}}]}
    response = as_operator.post("/runs", {"plan": plan, "mode": "assisted"})
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "waiting" and not run.steps.exists()
    review = ApprovalRequest.objects.get(run=run, status="pending")
    assert review.purpose == "plan_review" and review.state["digest"]
    approval_decide(request_id=review.pk, actor=reviewer, decision="approve")
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
