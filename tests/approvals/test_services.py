"""Deciding requests: four-eyes, quorum, digests, timeouts, delegation, races."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalRequest, Decision, RequestStatus
from approvals.services import (
    AlreadyDecided,
    DecisionInvalid,
    DecisionRefused,
    approval_decide,
    approval_delegate,
    requests_expire,
)
from tests.support.runs import advance, pending_request
from workflows.guards import params_digest
from workflows.models import Event, Run
from workflows.services import run_create


def events(run: Run) -> list[str]:
    return list(Event.objects.filter(run=run).order_by("seq").values_list("type", flat=True))


def ledger_lines(run: Run) -> list[str]:
    path = Path(run.plan["nodes"][1]["params"]["ledger"])
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.django_db
def test_the_requester_cannot_decide_their_own_run(gated_run, operator, roles) -> None:
    """Four-eyes: even a reviewer who started the run cannot approve its gate."""
    operator.groups.add(roles["Reviewers"])
    run = gated_run()
    with pytest.raises(DecisionRefused, match="four-eyes"):
        approval_decide(request_id=pending_request(run).pk, actor=operator, decision="approve")
    assert pending_request(run).status == RequestStatus.PENDING


@pytest.mark.django_db
def test_a_gate_records_the_digest_of_the_parameters_it_guards(gated_run, reviewer) -> None:
    run = gated_run()
    request = pending_request(run)
    node = run.plan["nodes"][1]
    expected = params_digest(
        node_id="write",
        action="test.ledger_append",
        params={"ledger": node["params"]["ledger"], "line": "hello"},
    )
    assert [g["digest"] for g in request.guards] == [expected]
    assert request.guards[0]["params"]["line"] == "hello"
    approval_decide(
        request_id=request.pk, actor=reviewer, decision="approve", digest=request.digest
    )
    decided = Event.objects.get(run=run, type="approval.decided")
    assert decided.data["digest"] == request.digest
    assert Decision.objects.get(request=request).digest == request.digest
    run = advance(run)
    assert run.status == "succeeded" and ledger_lines(run) == ["hello"]


@pytest.mark.django_db
def test_a_decision_on_a_stale_digest_is_refused(gated_run, reviewer) -> None:
    request = pending_request(gated_run())
    with pytest.raises(DecisionInvalid) as info:
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve", digest="0" * 64)
    assert "digest" in info.value.errors
    assert pending_request(request.run).status == RequestStatus.PENDING


@pytest.mark.django_db
def test_a_step_whose_parameters_changed_after_approval_does_not_run(
    gated_run, reviewer, reviewer2
) -> None:
    """What was approved is what runs: a changed context asks again."""
    run = gated_run()
    first = pending_request(run)
    approval_decide(request_id=first.pk, actor=reviewer, decision="approve")
    Run.objects.filter(pk=run.pk).update(context={"line": "rm -rf /"})  # changed behind it
    run = advance(run)
    assert run.status == "waiting"
    assert ledger_lines(run) == []
    again = pending_request(run)
    assert again.pk != first.pk and again.node_id == "write"
    assert again.guards[0]["params"]["line"] == "rm -rf /"
    assert "approval.digest_mismatch" in events(run)
    approval_decide(request_id=again.pk, actor=reviewer2, decision="approve", digest=again.digest)
    run = advance(run)
    assert run.status == "succeeded" and ledger_lines(run) == ["rm -rf /"]


@pytest.mark.django_db
def test_a_vote_the_constraint_refuses_leaves_the_decision_unmade(
    gated_run, reviewer, reviewer2, monkeypatch
) -> None:
    """Past the check under the lock (as if it raced), the unique vote still holds."""
    run = gated_run(quorum=2)
    request = pending_request(run)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    before = events(run)
    # The check under the lock sees no vote yet.
    monkeypatch.setattr(services, "_votes", lambda request: [])
    with pytest.raises(DecisionInvalid, match="already decided"):
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    monkeypatch.undo()
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert Decision.objects.filter(request=request).count() == 1
    assert events(run) == before
    # The transaction is whole again: the next person's vote counts.
    approval_decide(request_id=request.pk, actor=reviewer2, decision="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


@pytest.mark.django_db
def test_a_quorum_needs_distinct_people(gated_run, reviewer, reviewer2) -> None:
    run = gated_run(quorum=2)
    request = pending_request(run)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert "approval.vote" in events(run)
    with pytest.raises(DecisionInvalid, match="already approved"):
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    approval_decide(request_id=request.pk, actor=reviewer2, decision="approve")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert Event.objects.get(run=run, type="approval.decided").data["approvers"] == [
        "reviewer",
        "reviewer2",
    ]
    assert advance(run).status == "succeeded"


@pytest.mark.django_db
def test_a_delegated_request_is_decided_only_by_the_delegate(
    gated_run, reviewer, reviewer2
) -> None:
    run = gated_run()
    request = pending_request(run)
    approval_delegate(
        request_id=request.pk, actor=reviewer, to_user="reviewer2", comment="you know this system"
    )
    delegated = Event.objects.get(run=run, type="approval.delegated")
    assert delegated.actor_label == "reviewer" and delegated.data["to_user"] == "reviewer2"
    with pytest.raises(DecisionRefused, match="delegated to reviewer2"):
        approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    approval_decide(request_id=request.pk, actor=reviewer2, decision="approve")


@pytest.mark.django_db
def test_delegating_to_someone_who_cannot_decide_names_the_field(
    gated_run, reviewer, auditor
) -> None:
    request = pending_request(gated_run())
    with pytest.raises(DecisionInvalid) as info:
        approval_delegate(request_id=request.pk, actor=reviewer, to_user="auditor")
    assert "to_user" in info.value.errors
    with pytest.raises(DecisionInvalid) as info:
        approval_delegate(request_id=request.pk, actor=reviewer, to_group="Nobody")
    assert "to_group" in info.value.errors


@pytest.mark.django_db
def test_on_timeout_reject_fails_the_run_as_the_system(gated_run) -> None:
    run = gated_run(due_in_s=60, on_timeout="reject")
    request = pending_request(run)
    assert request.due_at is not None
    assert requests_expire(now=timezone.now()) == 0  # not yet due
    assert requests_expire(now=timezone.now() + timedelta(seconds=61)) == 1
    request.refresh_from_db()
    run.refresh_from_db()
    assert request.status == RequestStatus.REJECTED and run.status == "failed"
    timed_out = Event.objects.get(run=run, type="approval.timed_out")
    assert timed_out.actor_label == "system" and timed_out.data["on_timeout"] == "reject"


@pytest.mark.django_db
def test_on_timeout_approve_uses_the_defaults(operator) -> None:
    run = advance(
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "ask",
                        "type": "input",
                        "title": "Model?",
                        "due_in_s": 1,
                        "on_timeout": "approve",
                        "fields": {"model": {"type": "string", "default": "ThinkPad T14"}},
                    },
                ]
            },
        )
    )
    requests_expire(now=timezone.now() + timedelta(seconds=2))
    request = ApprovalRequest.objects.get(run=run)
    assert request.status == RequestStatus.APPROVED and request.values == {"model": "ThinkPad T14"}
    run = advance(run)
    assert run.status == "succeeded" and run.context["model"] == "ThinkPad T14"


@pytest.mark.django_db
def test_on_timeout_escalate_reassigns_to_the_other_group(gated_run, roles) -> None:
    run = gated_run(due_in_s=5, on_timeout="escalate", escalate_to="Operators")
    requests_expire(now=timezone.now() + timedelta(seconds=10))
    request = pending_request(run)
    assert request.assigned_group.name == "Operators" and request.due_at is None
    escalated = Event.objects.get(run=run, type="approval.escalated")
    assert escalated.actor_label == "system" and escalated.data["to_group"] == "Operators"


@pytest.mark.django_db
def test_a_timeout_policy_without_a_due_time_is_rejected_naming_the_field(operator) -> None:
    from workflows.plans import PlanInvalid

    with pytest.raises(PlanInvalid) as info:
        run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {"id": "gate", "type": "approval", "title": "ok?", "on_timeout": "escalate"}
                ]
            },
        )
    fields = {e.field for e in info.value.errors}
    assert fields == {"on_timeout"}, info.value.errors


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_deciding_at_once_record_exactly_one_decision(
    gated_run, reviewer, reviewer2
) -> None:
    """The race: one decision wins; the other is told it was decided, and by whom."""
    request = pending_request(gated_run())
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(user) -> None:  # type: ignore[no-untyped-def]
        start.wait()
        try:
            approval_decide(request_id=request.pk, actor=user, decision="approve")
            outcomes[user.username] = "won"
        except AlreadyDecided as exc:
            outcomes[user.username] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=(u,)) for u in (reviewer, reviewer2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [name for name, result in outcomes.items() if result == "won"]
    losers = [result for result in outcomes.values() if isinstance(result, AlreadyDecided)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].decided_by == winners[0]
    assert f"approved by {winners[0]}" in str(losers[0])
    assert Decision.objects.filter(request=request).count() == 1
    assert Event.objects.filter(type="approval.decided").count() == 1


# Real commits: with the ORM broker the task is queued in the decision's transaction.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_run_is_queued_before_the_decisions_webhook_and_slack_work(
    gated_run, reviewer, monkeypatch, decision
) -> None:
    """Commit hooks run in order: the next step must not wait for the notifications."""
    from approvals import notifications
    from workflows.services import runs

    # A rejected gate with an on_reject target goes on there: queued too.
    run = gated_run(on_reject="write")  # (its own start queues a task before the patch)
    order: list[str] = []
    monkeypatch.setattr(runs, "enqueue_advance", lambda run_id, *_: order.append("queued"))
    monkeypatch.setattr(notifications, "request_decided", lambda pk: order.append("notified"))
    approval_decide(
        request_id=pending_request(run).pk,
        actor=reviewer,
        decision=decision,
        comment="no" if decision == "reject" else "",
    )
    assert order == ["queued", "notified"]
