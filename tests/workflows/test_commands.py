"""Command line: plan, start_run, approvals, and the folder watch (a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from approvals.models import ApprovalRequest, RequestStatus
from tests.support.fixtures import ROOT, worker_env
from tests.support.waiting import wait_for
from workflows.engine import run_advance
from workflows.models import Run
from workflows.services import workflow_create
from workflows.states import RunStatus


def out(*args: str) -> str:
    buffer = StringIO()
    call_command(*args, stdout=buffer)
    return buffer.getvalue()


@pytest.fixture
def filing(operator):  # type: ignore[no-untyped-def]
    return workflow_create(
        actor=operator,
        raw_spec={
            "slug": "file-landed",
            "title": "File what lands",
            "mode": "autonomous",
            "inputs": {
                "type": "object",
                "required": ["path"],
                "properties": {"path": {"type": "string"}, "tag": {"type": "string"}},
            },
            "plan": {
                "nodes": [
                    {"id": "hash", "action": "files.sha256", "params": {"path": "{{ path }}"}}
                ]
            },
        },
    )


def test_plan_prints_the_validated_plan_and_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    text = out(
        "plan", "check that http://127.0.0.1:8000/api/v1/health returns 200", "-o", str(target)
    )
    assert "1 | check | api.request | medium |" in text
    assert "valid plan (builtin planner)" in text
    assert json.loads(target.read_text())["nodes"][0]["params"]["expect_status"] == 200
    with pytest.raises(CommandError, match="does not guess"):
        out("plan", "bake a cake")


@pytest.mark.django_db
def test_start_run_from_a_plan_file_then_review_and_decide(
    tmp_path: Path, workspace: Path, operator, reviewer
) -> None:
    (workspace / "Downloads").mkdir()
    (workspace / "Downloads" / "a.pdf").write_text("a")
    plan_file = tmp_path / "plan.json"
    out("plan", "organize Downloads by type", "-o", str(plan_file))
    assert "queued (assisted)" in out(
        "start_run",
        "--plan-file",
        str(plan_file),
        "--as",
        "operator",
        "--set",
        "note=from the CLI",
    )
    run = Run.objects.get()
    assert run.context == {"note": "from the CLI"} and run.requester == operator
    run_advance(run_id=run.pk)
    request = ApprovalRequest.objects.get(status=RequestStatus.PENDING)

    listing = out("approvals", "list")
    assert f"{request.pk}\trun {run.pk}\tpreview\tapproval\tpending\tReviewers" in listing
    assert "1 | preview | files.organize" in out("approvals", "show", str(request.pk))
    with pytest.raises(CommandError, match="operator may not do this"):
        out("approvals", "decide", str(request.pk), "approve", "--as", "operator")
    with pytest.raises(CommandError, match="apply.by: 'kind' is not one of"):
        out(
            "approvals",
            "decide",
            str(request.pk),
            "approve",
            "--as",
            "reviewer",
            "--set",
            "apply.by=kind",
        )
    assert "approved" in out(
        "approvals",
        "decide",
        str(request.pk),
        "approve",
        "--as",
        "reviewer",
        "--set",
        "apply.by=date",
        "--set",
        "preview.by=date",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.plan["nodes"][2]["params"]["by"] == "date"


@pytest.mark.django_db
def test_start_run_checks_the_user_and_the_inputs(filing, operator, reviewer) -> None:
    with pytest.raises(CommandError, match="reviewer may not do this"):
        out("start_run", "--workflow", "file-landed", "--as", "reviewer")
    with pytest.raises(CommandError, match="context.path: this input is required"):
        out("start_run", "--workflow", "file-landed", "--as", "operator")
    with pytest.raises(CommandError, match="no workflow 'nope'"):
        out("start_run", "--workflow", "nope", "--as", "operator")
    out("start_run", "--workflow", "file-landed", "--as", "operator", "--set", "path=a.txt")
    assert Run.objects.get().context == {"path": "a.txt"}


@pytest.mark.django_db(transaction=True)
def test_watch_folder_starts_a_run_when_a_file_lands(
    filing, operator, workspace: Path, tmp_path: Path
) -> None:
    log = open(tmp_path / "watch.log", "w+b")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "watch_folder",
            "incoming",
            "--workflow",
            "file-landed",
            "--as",
            "operator",
            "--pattern",
            "*.pdf",
            "--set",
            "tag=scan",
            "--settle",
            "0.2",
        ],
        cwd=ROOT,
        env=worker_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: b"watching" in (tmp_path / "watch.log").read_bytes(),
            timeout=30,
            message="the watcher to start",
        )
        (workspace / "incoming" / "skip.txt").write_text("not a pdf")
        (workspace / "incoming" / "scan-1.pdf").write_bytes(b"%PDF-1.4 scan")
        run = wait_for(lambda: Run.objects.first(), timeout=30, message="a run to start")
        assert run.context == {"path": "incoming/scan-1.pdf", "tag": "scan"}
        assert run.workflow == filing and run.requester == operator
        wait_for(
            lambda: b"run " in (tmp_path / "watch.log").read_bytes(),
            timeout=10,
            message="the watcher's report",
        )
        assert Run.objects.count() == 1
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    assert proc.returncode == 0, (tmp_path / "watch.log").read_text()
