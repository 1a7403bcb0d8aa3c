"""The engine, driven in-process; every action runs in a real subprocess."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from approvals.models import RequestKind, RequestStatus
from approvals.services import DecisionInvalid, DecisionRefused, approval_decide
from tests.support.review import approve_plan_review
from tests.support.runs import advance
from tests.support.runs import pending_request as pending
from workflows.events import verify_all
from workflows.models import Event, Run
from workflows.services import run_cancel, run_create, workflow_create
from workflows.states import RunStatus, StepStatus, TransitionNotAllowed

pytestmark = pytest.mark.django_db


def types(run: Run) -> list[str]:
    return list(Event.objects.filter(run=run).order_by("seq").values_list("type", flat=True))


def ledger_node(node_id: str, ledger: Path, line: str, **extra: object) -> dict:
    return {
        "id": node_id,
        "action": "test.ledger_append",
        "params": {"ledger": str(ledger), "line": line},
        **extra,
    }


def test_a_plan_runs_to_completion(workspace: Path, operator, reviewer) -> None:
    """Files are copied and verified; outputs flow through the context."""
    (workspace / "in.txt").write_text("hello world\n")
    digest = hashlib.sha256(b"hello world\n").hexdigest()
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "copy",
                    "action": "files.copy",
                    "params": {"source": "in.txt", "destination": "out/in.txt"},
                    "outputs": {"copied_sha": "sha256"},
                },
                {"id": "exists", "action": "verify.file_exists", "params": {"path": "out/in.txt"}},
                {
                    "id": "same",
                    "action": "verify.value_equals",
                    "params": {"value": "{{ copied_sha }}", "expected": digest},
                },
            ]
        },
    )
    assert run.status == RunStatus.QUEUED
    # A bare plan with a medium-risk action (files.copy) is reviewed first.
    run = approve_plan_review(run, reviewer)

    run = advance(run)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.context == {"copied_sha": digest}
    assert (workspace / "out" / "in.txt").read_text() == "hello world\n"
    assert [s.status for s in run.steps.order_by("id")] == [StepStatus.SUCCEEDED] * 3
    assert run.steps.get(node_id="copy").output["sha256"] == digest
    assert types(run) == [
        "run.created",
        "run.running",
        "run.paused",
        "approval.decided",
        "run.resumed",
        "run.running",
    ] + ["step.started", "step.succeeded"] * 3 + ["run.succeeded"]
    assert run.finished_at is not None and run.lease_owner == ""
    assert verify_all() == []


def test_approval_node_pauses_and_approval_resumes(tmp_path: Path, operator, reviewer) -> None:
    ledger = tmp_path / "ledger"
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                ledger_node("one", ledger, "one"),
                {"id": "gate", "type": "approval", "title": "Continue after {{ note }}?"},
                ledger_node("two", ledger, "two"),
            ]
        },
        context={"note": "step one"},
    )

    run = advance(run)
    assert run.status == RunStatus.WAITING and run.current_node == "gate"
    request = pending(run)
    assert request.kind == RequestKind.APPROVAL
    assert request.title == "Continue after step one?"
    assert request.assigned_group.name == "Reviewers"
    assert ledger.read_text() == "one\n"
    assert advance(run).status == RunStatus.WAITING, "a paused run does not move by itself"

    approval_decide(request_id=request.pk, actor=reviewer, decision="approve", comment="ok")
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED

    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED
    assert ledger.read_text() == "one\ntwo\n", "the completed step did not run again"
    decided = Event.objects.get(run=run, type="approval.decided")
    assert decided.actor == reviewer and decided.data["decision"] == "approve"
    assert verify_all() == []


def test_a_step_behind_a_gate_reads_the_runs_approvals_once(
    tmp_path: Path, operator, reviewer
) -> None:
    """Is the gate approved, and does what was approved still match: one query for both."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ledger = tmp_path / "ledger"
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {"id": "gate", "type": "approval", "title": "Go?"},
                ledger_node("two", ledger, "two"),
            ]
        },
    )
    run = advance(run)
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    with CaptureQueriesContext(connection) as queries:
        run = advance(run)
    assert run.status == RunStatus.SUCCEEDED
    assert ledger.read_text() == "two\n"
    approvals = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "approvals_approvalrequest"' in q["sql"] and "approved" in q["sql"]
    ]
    assert len(approvals) == 1, approvals


def test_rejection_fails_the_run_with_the_reason(tmp_path: Path, operator, reviewer) -> None:
    ledger = tmp_path / "ledger"
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {"id": "gate", "type": "approval", "title": "Go?"},
                    ledger_node("after", ledger, "x"),
                ]
            },
        )
    )
    request = pending(run)

    with pytest.raises(DecisionInvalid) as missing_reason:
        approval_decide(request_id=request.pk, actor=reviewer, decision="reject")
    assert "comment" in missing_reason.value.errors
    approval_decide(
        request_id=request.pk, actor=reviewer, decision="reject", comment="budget frozen"
    )

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "budget frozen" in run.error and "reviewer" in run.error
    assert not ledger.exists()
    request.refresh_from_db()
    assert request.status == RequestStatus.REJECTED and request.decided_by == reviewer


def test_the_requester_cannot_decide_their_own_gate(operator, reviewer) -> None:
    reviewer.groups.add(*operator.groups.all())
    run = advance(
        run_create(
            mode="autonomous",
            requester=reviewer,
            plan={"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]},
        )
    )
    with pytest.raises(DecisionRefused, match="four-eyes"):
        approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    assert pending(run).status == RequestStatus.PENDING


def test_a_missing_value_becomes_an_input_request(tmp_path: Path, operator, reviewer) -> None:
    ledger = tmp_path / "ledger"
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    ledger_node("greet", ledger, "{{ greeting }}"),
                ]
            },
        )
    )

    assert run.status == RunStatus.WAITING
    request = pending(run)
    assert request.kind == RequestKind.INPUT
    assert request.fields["required"] == ["greeting"]
    assert request.fields["properties"]["greeting"]["type"] == "string"
    assert not ledger.exists(), "nothing ran before the value was there"

    with pytest.raises(DecisionInvalid) as wrong_type:
        approval_decide(
            request_id=request.pk, actor=reviewer, decision="approve", values={"greeting": 42}
        )
    assert "greeting" in wrong_type.value.errors
    approval_decide(
        request_id=request.pk, actor=reviewer, decision="approve", values={"greeting": "hello"}
    )

    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED
    assert run.context["greeting"] == "hello"
    assert ledger.read_text() == "hello\n"


def test_a_missing_input_is_typed_from_the_workflow_inputs(tmp_path: Path, operator) -> None:
    workflow = workflow_create(
        raw_spec={
            "slug": "typed",
            "title": "Typed",
            "mode": "autonomous",
            "inputs": {
                "type": "object",
                "properties": {
                    "size": {"type": "string", "enum": ["S", "M", "L"], "title": "Size"}
                },
            },
            "plan": {"nodes": [ledger_node("use", tmp_path / "l", "{{ size }}")]},
        }
    )
    run = advance(run_create(workflow=workflow, requester=operator))
    assert pending(run).fields["properties"]["size"] == {
        "type": "string",
        "enum": ["S", "M", "L"],
        "title": "Size",
    }


def test_a_missing_value_is_typed_from_the_parameter_schema(operator) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {"id": "nap", "action": "test.sleep", "params": {"seconds": "{{ pause }}"}},
                ]
            },
        )
    )
    assert pending(run).fields["properties"]["pause"]["type"] == "number"


def test_an_input_node_writes_its_answers_to_the_context(operator, reviewer) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "ask",
                        "type": "input",
                        "title": "Details",
                        "fields": {
                            "count": {"type": "integer", "minimum": 1},
                            "note": {"type": "string"},
                        },
                        "required": ["count"],
                    },
                    {
                        "id": "check",
                        "action": "verify.value_equals",
                        "params": {"value": "{{ count }}", "expected": 3},
                    },
                ]
            },
        )
    )
    request = pending(run)
    with pytest.raises(DecisionInvalid) as bad:
        approval_decide(
            request_id=request.pk, actor=reviewer, decision="approve", values={"count": 0}
        )
    assert "count" in bad.value.errors
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve", values={"count": 3})
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED and run.context == {"count": 3}


def test_an_action_that_asks_pauses_and_continues(operator, reviewer) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "pick",
                        "action": "test.ask",
                        "params": {"field": "model", "enum": ["A1", "B2"]},
                        "outputs": {"model": "value"},
                    },
                ]
            },
        )
    )
    request = pending(run)
    assert request.kind == RequestKind.INPUT and request.step is not None
    assert request.fields["properties"]["model"]["enum"] == ["A1", "B2"]
    assert request.step.status == StepStatus.NEEDS_INPUT
    approval_decide(
        request_id=request.pk, actor=reviewer, decision="approve", values={"model": "B2"}
    )
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.context["model"] == "B2"
    assert list(run.steps.values_list("status", flat=True)) == [
        StepStatus.NEEDS_INPUT,
        StepStatus.SUCCEEDED,
    ]


def test_interactive_mode_asks_before_every_action(operator, reviewer, tmp_path) -> None:
    ledger = tmp_path / "ledger"
    run = advance(
        run_create(
            mode="interactive",
            requester=operator,
            plan={"nodes": [ledger_node("one", ledger, "1"), ledger_node("two", ledger, "2")]},
        )
    )
    for expected in ("", "1\n"):
        request = pending(run)
        assert request.state["action"] == "test.ledger_append"
        assert request.state["params"]["line"] in ("1", "2")
        assert (ledger.read_text() if ledger.exists() else "") == expected
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
        run = advance(run)
    assert run.status == RunStatus.SUCCEEDED and ledger.read_text() == "1\n2\n"


def test_assisted_mode_asks_before_risky_actions_only(operator, reviewer, tmp_path) -> None:
    run = advance(
        approve_plan_review(
            run_create(
                mode="assisted",
                requester=operator,
                plan={
                    "nodes": [
                        ledger_node("safe", tmp_path / "l", "x"),
                        {"id": "danger", "action": "test.risky", "params": {"target": "prod"}},
                    ]
                },
            ),
            reviewer,
        )
    )
    assert run.status == RunStatus.WAITING and run.current_node == "danger"
    approval_decide(request_id=pending(run).pk, actor=reviewer, decision="approve")
    assert advance(run).status == RunStatus.SUCCEEDED


def test_a_failing_step_is_retried_then_fails_the_run(operator) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "bad",
                        "action": "test.fail",
                        "params": {"message": "portal said no"},
                        "retry": {"max_attempts": 3, "backoff_s": 0.1},
                    },
                ]
            },
        )
    )
    assert run.status == RunStatus.FAILED
    assert "portal said no" in run.error and "after 3 attempts" in run.error
    assert list(run.steps.values_list("status", flat=True)) == [StepStatus.FAILED] * 3
    assert types(run).count("step.failed") == 3


def test_a_crash_is_not_a_failure(operator) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={"nodes": [{"id": "boom", "action": "test.crash", "params": {}}]},
        )
    )
    assert run.status == RunStatus.FAILED
    assert run.steps.get().status == StepStatus.CRASHED


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_step_past_its_timeout_is_killed_with_its_children(operator, tmp_path) -> None:
    pid_file = tmp_path / "pid"
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "hang",
                        "action": "test.spawn_and_hang",
                        "params": {"pid_file": str(pid_file)},
                        "timeout_s": 1,
                        "retry": {"max_attempts": 2, "backoff_s": 0},
                    },
                ]
            },
        )
    )
    assert run.status == RunStatus.FAILED
    steps = list(run.steps.order_by("attempt"))
    assert [s.status for s in steps] == [StepStatus.TIMED_OUT, StepStatus.TIMED_OUT]
    assert "after 2 attempts" in run.error
    grandchild = int(pid_file.read_text())
    assert not _alive(grandchild), "the action's child process outlived the timeout"


def test_a_timed_out_non_idempotent_step_asks_a_person(operator, reviewer, tmp_path) -> None:
    ledger = tmp_path / "ledger"
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "once",
                        "action": "test.slow_first_once",
                        "params": {"ledger": str(ledger), "seconds": 30},
                        "timeout_s": 0.5,
                        "outputs": {"done_attempt": "attempt"},
                    },
                ]
            },
        )
    )
    request = pending(run)
    assert request.kind == RequestKind.UNKNOWN_OUTCOME
    assert request.step.status == StepStatus.UNKNOWN
    assert run.steps.count() == 1, "it was not re-run silently"

    approval_decide(request_id=request.pk, actor=reviewer, decision="approve", resolution="retry")
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert ledger.read_text().splitlines() == ["start once 1", "start once 2", "end once 2"]


def test_an_unknown_outcome_can_be_marked_done(operator, reviewer, tmp_path) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "once",
                        "action": "test.slow_first_once",
                        "params": {"ledger": str(tmp_path / "l"), "seconds": 30},
                        "timeout_s": 0.5,
                        "outputs": {"done_attempt": "attempt"},
                    },
                    {
                        "id": "check",
                        "action": "verify.value_equals",
                        "params": {"value": "{{ done_attempt }}", "expected": 7},
                    },
                ]
            },
        )
    )
    request = pending(run)
    with pytest.raises(DecisionInvalid):
        approval_decide(
            request_id=request.pk, actor=reviewer, decision="approve", resolution="mark_done"
        )
    approval_decide(
        request_id=request.pk,
        actor=reviewer,
        decision="approve",
        resolution="mark_done",
        values={"attempt": 7},
    )
    run = advance(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.steps.get(node_id="once").status == StepStatus.SUCCEEDED
    assert "step.marked_done" in types(run)


def test_an_unknown_outcome_can_fail_the_run(operator, reviewer, tmp_path) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "once",
                        "action": "test.slow_first_once",
                        "params": {"ledger": str(tmp_path / "l"), "seconds": 30},
                        "timeout_s": 0.5,
                    }
                ]
            },
        )
    )
    approval_decide(
        request_id=pending(run).pk,
        actor=reviewer,
        decision="approve",
        resolution="fail",
        comment="it half happened",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "it half happened" in run.error


def test_cancel_closes_the_open_request(operator, reviewer) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]},
        )
    )
    request = pending(run)
    run_cancel(run_id=run.pk, actor=operator, reason="not needed")
    run.refresh_from_db()
    request.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and request.status == RequestStatus.CANCELLED
    with pytest.raises(TransitionNotAllowed):
        run_cancel(run_id=run.pk, actor=operator)


def test_secrets_never_reach_events_or_steps(operator) -> None:
    """A secret an action uses is scrubbed from what is stored."""
    secret = os.environ["AGENTOS_SECRET_TEST_TOKEN"]
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [{"id": "leak", "action": "test.echo_secret", "params": {"text": "hi"}}]
            },
        )
    )
    stored = "".join(str(v) for v in Event.objects.filter(run=run).values_list("data", flat=True))
    stored += "".join(f"{s.output}{s.error}{s.evidence}" for s in run.steps.all())
    assert secret not in stored
