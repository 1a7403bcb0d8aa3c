"""A plan from the planner pauses for review: approve, edit (re-validated) or reject."""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.services import approval_decide
from tests.support.runs import advance
from tests.support.runs import pending_request as pending
from workflows.models import Event, Run
from workflows.plan_review import plan_digest
from workflows.planner import draft
from workflows.plans import PlanInvalid
from workflows.services import run_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


def folders(workspace: Path) -> None:
    for name in ("Downloads", "Inbox"):
        (workspace / name).mkdir()
        (workspace / name / "report.pdf").write_bytes(b"%PDF " + name.encode())
        (workspace / name / "photo.png").write_bytes(b"PNG " + name.encode())


def reviewed_run(operator, mode: str = "assisted") -> Run:
    drafted = draft("organize Downloads by type")
    assert drafted["valid"], drafted["errors"]
    return run_create(plan=drafted["plan"], mode=mode, requester=operator, review_plan=True)


def test_review_shows_table_json_and_digest_before_the_first_step(
    workspace: Path, operator
) -> None:
    folders(workspace)
    run = advance(reviewed_run(operator))

    assert run.status == RunStatus.WAITING and run.position == 0
    assert not run.steps.exists()
    request = pending(run)
    assert request.purpose == "plan_review"
    assert request.state["digest"] == plan_digest(run.plan)
    assert request.state["plan"] == run.plan
    assert "1 | preview | files.organize | medium" in request.description
    assert "2 | confirm | approval:" in request.description
    assert request.fields["properties"]["apply.path"]["default"] == "Downloads"
    assert request.fields["properties"]["apply.by"]["enum"] == ["type", "date"]
    assert sorted(p.name for p in (workspace / "Downloads").iterdir()) == [
        "photo.png",
        "report.pdf",
    ]


def test_approving_unchanged_runs_the_reviewed_plan(workspace: Path, operator, reviewer) -> None:
    folders(workspace)
    run = advance(reviewed_run(operator))
    digest = plan_digest(run.plan)
    request = pending(run)
    # A form resubmits every default: unchanged values edit nothing.
    approval_decide(
        request_id=request.pk,
        actor=reviewer,
        decision="approve",
        values={"apply.path": "Downloads", "apply.overwrite": False},
    )
    run = advance(run)
    assert run.status == RunStatus.WAITING and run.current_node == "confirm"
    assert run.steps.get(node_id="preview").output["count"] == 2
    assert not Event.objects.filter(run=run, type="run.plan_edited").exists()
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert plan_digest(run.plan) == digest
    assert (workspace / "Downloads" / "Documents" / "report.pdf").exists()
    assert (workspace / "Downloads" / "Images" / "photo.png").exists()


def test_edited_parameters_are_revalidated_and_the_edited_plan_runs(
    workspace: Path, operator, reviewer
) -> None:
    folders(workspace)
    run = advance(reviewed_run(operator))
    before = plan_digest(run.plan)
    request = pending(run)

    with pytest.raises(PlanInvalid) as bad:
        approval_decide(
            request_id=request.pk,
            actor=reviewer,
            decision="approve",
            values={"preview.path": "Inbox", "apply.path": "../outside"},
        )
    assert [(e.field, e.message) for e in bad.value.errors] == [
        ("apply.path", "'../outside' contains '..', which is not allowed")
    ]
    run.refresh_from_db()
    assert plan_digest(run.plan) == before and pending(run).pk == request.pk

    approval_decide(
        request_id=request.pk,
        actor=reviewer,
        decision="approve",
        values={"preview.path": "Inbox", "apply.path": "Inbox", "apply.by": "type"},
    )
    run.refresh_from_db()
    edited = Event.objects.get(run=run, type="run.plan_edited")
    assert edited.data["before"] == before
    assert edited.data["after"] == plan_digest(run.plan) != before
    assert edited.data["changes"] == {
        "preview.path": {"before": "Downloads", "after": "Inbox"},
        "apply.path": {"before": "Downloads", "after": "Inbox"},
    }
    assert run.grant.plan_digest == plan_digest(run.plan)

    run = advance(run)
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (workspace / "Inbox" / "Documents" / "report.pdf").exists()
    assert (workspace / "Downloads" / "report.pdf").exists()  # the original target untouched


def test_rejecting_the_plan_fails_the_run_and_runs_nothing(
    workspace: Path, operator, reviewer
) -> None:
    folders(workspace)
    run = advance(reviewed_run(operator))
    approval_decide(
        request_id=pending(run).pk, actor=reviewer, decision="reject", comment="wrong folder"
    )
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "wrong folder" in run.error
    assert not run.steps.exists()
    assert (workspace / "Downloads" / "report.pdf").exists()


def test_the_approval_covers_only_the_reviewed_plan(workspace: Path, operator, reviewer) -> None:
    folders(workspace)
    run = advance(reviewed_run(operator))
    request = pending(run)
    tampered = dict(run.plan)
    tampered["nodes"] = [dict(n) for n in run.plan["nodes"]]
    tampered["nodes"][2] = {**tampered["nodes"][2], "params": {"path": "Inbox", "by": "date"}}
    Run.objects.filter(pk=run.pk).update(plan=tampered)

    with pytest.raises(PlanInvalid, match="the plan changed since this review was opened"):
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    assert pending(run).pk == request.pk


def test_autonomous_runs_of_a_risky_plan_are_reviewed_too(workspace: Path, operator) -> None:
    """A bare plan with an action above low risk is reviewed in every mode."""
    folders(workspace)
    run = advance(reviewed_run(operator, mode="autonomous"))
    assert run.status == RunStatus.WAITING and run.current_node == "preview"
    assert pending(run).purpose == "plan_review"
    assert not run.steps.exists()


def test_autonomous_runs_of_a_low_risk_plan_skip_the_review(workspace: Path, operator) -> None:
    (workspace / "Downloads").mkdir()
    run = advance(
        run_create(
            plan={
                "nodes": [
                    {"id": "look", "action": "files.list", "params": {"path": "Downloads"}},
                    {"id": "confirm", "type": "approval", "title": "Go on?"},
                ]
            },
            mode="autonomous",
            requester=operator,
            review_plan=True,
        )
    )
    assert run.status == RunStatus.WAITING and run.current_node == "confirm"
    assert pending(run).purpose == "approval_node"
    assert run.steps.get().node_id == "look"
