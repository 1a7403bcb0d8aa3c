"""Slack messages: posted for a request, updated after every change, retried.

Against a local stand-in of Slack's Web API (tests/support/slack.py), a real
HTTP server that checks the bot token and the shape of every call.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from approvals.models import ApprovalRequest, SlackMessage
from approvals.services import approval_decide, requests_expire
from approvals.slack.services import message_sync
from tests.integrations.slack_flows import (
    SECRET,
    SPEC,
    TOKEN,
    posted,
    texts,
    waiting_run,
    waiting_run_again,
)
from workflows.engine import run_advance
from workflows.services import run_cancel, workflow_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


def test_a_request_is_posted_with_what_approving_lets_run(slack, operator) -> None:  # type: ignore[no-untyped-def]
    """chat.postMessage with a title, the run, the guarded params and two buttons."""
    run, request = waiting_run(operator)
    msg = SlackMessage.objects.get(request=request)
    assert msg.channel == "#approvals" and msg.ts == ""
    message = posted(slack, request)
    assert message["channel"] == "#approvals"
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Order a laptop for Ada?", "emoji": True},
    }
    body = texts(message)
    assert f"*Run* #{run.pk} of Order a laptop" in body
    assert "verify.value_equals" in body and "Ada" in body
    buttons = [b for b in message["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [b["action_id"] for b in buttons] == ["approve", "reject", "open"]
    assert json.loads(buttons[0]["value"]) == {"request": request.pk, "digest": request.digest}
    assert buttons[2]["url"].endswith(f"/inbox/requests/{request.pk}/")
    msg.refresh_from_db()
    assert msg.ts and msg.channel == "CAPPROVALS"  # the channel id Slack answered
    # The post carries the run's correlation id, as webhooks and actions do.
    sent = [c for c in slack.calls if c["method"] == "chat.postMessage"]
    assert [c["correlation_id"] for c in sent] == [str(run.correlation_id)]
    # Nothing changed: no second call.
    assert message_sync(request_id=request.pk) == "unchanged"


def test_a_429_is_retried_after_retry_after_by_a_scheduled_task(slack, operator) -> None:  # type: ignore[no-untyped-def]
    _, request = waiting_run(operator)
    slack.fail_next("chat.postMessage", 429, retry_after=7)
    before = timezone.now()
    assert message_sync(request_id=request.pk, post=True) == "retry"
    msg = SlackMessage.objects.get(request=request)
    assert (msg.attempts, msg.ts, msg.failed) == (1, "", False)
    assert "rate limited" in msg.last_error
    retry = Schedule.objects.get(func="approvals.slack.tasks.message_sync")
    assert (retry.schedule_type, retry.repeats) == (Schedule.ONCE, -1)
    assert timedelta(seconds=6) < retry.next_run - before < timedelta(seconds=9)
    assert retry.args == repr((request.pk, True))

    # What the scheduled task does when its time comes.
    from approvals.slack import tasks

    assert tasks.message_sync(request.pk, True) == "synced"
    msg.refresh_from_db()
    assert (msg.attempts, msg.last_error) == (0, "")
    assert len(slack.of("chat.postMessage")) == 1


def test_errors_back_off_and_a_permanent_error_gives_up(slack, operator, settings) -> None:  # type: ignore[no-untyped-def]
    settings.AGENTOS_SLACK_MAX_ATTEMPTS = 2
    _, request = waiting_run(operator)
    slack.fail_next("chat.postMessage", 500)
    assert message_sync(request_id=request.pk, post=True) == "retry"
    slack.fail_next("chat.postMessage", 500)
    assert message_sync(request_id=request.pk, post=True) == "failed"
    assert SlackMessage.objects.get(request=request).failed
    assert message_sync(request_id=request.pk, post=True) == "none"

    _, other = waiting_run_again(operator)
    slack.fail_next("chat.postMessage", 200, error="channel_not_found")
    assert message_sync(request_id=other.pk, post=True) == "failed"
    assert Schedule.objects.filter(func="approvals.slack.tasks.message_sync").count() == 1


def test_a_slack_outage_blocks_no_run_and_no_decision(settings, operator, reviewer) -> None:  # type: ignore[no-untyped-def]
    """Slack unreachable: the run pauses, is approved in the inbox and ends."""
    settings.AGENTOS_SLACK_BOT_TOKEN = TOKEN
    settings.AGENTOS_SLACK_SIGNING_SECRET = SECRET
    settings.AGENTOS_SLACK_API_URL = "http://127.0.0.1:9/api"  # nothing listens
    run, request = waiting_run(operator)
    assert message_sync(request_id=request.pk, post=True) == "retry"
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_expiry_escalation_and_cancel_update_the_message(slack, operator, roles) -> None:  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(SPEC)
    spec["plan"]["nodes"][0].update(due_in_s=60, on_timeout="escalate", escalate_to="Managers")
    run, request = waiting_run(operator, spec)
    posted(slack, request)
    ApprovalRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() - timedelta(1))
    assert requests_expire() == 1
    assert message_sync(request_id=request.pk) == "synced"
    assert "*Waiting for* Managers" in texts(slack.of("chat.update")[-1])

    run_cancel(run_id=run.pk, actor=operator, reason="wrong laptop")
    assert message_sync(request_id=request.pk) == "synced"
    assert "*Closed*" in texts(slack.of("chat.update")[-1])


def test_a_timed_out_request_shows_the_system_rejected_it(slack, operator) -> None:  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(SPEC)
    spec["plan"]["nodes"][0].update(due_in_s=60, on_timeout="reject")
    _, request = waiting_run(operator, spec)
    posted(slack, request)
    ApprovalRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() - timedelta(1))
    requests_expire()
    assert message_sync(request_id=request.pk) == "synced"
    assert "*Rejected* by AgentOS at" in texts(slack.of("chat.update")[-1])
    assert "timed out" in texts(slack.of("chat.update")[-1])


def test_without_a_channel_nothing_is_posted(slack, operator) -> None:  # type: ignore[no-untyped-def]
    spec = {**SPEC, "slug": "quiet"}
    del spec["slack_channel"]
    _, request = waiting_run(operator, spec)
    assert not SlackMessage.objects.filter(request=request).exists()
    assert message_sync(request_id=request.pk, post=True) == "none"


def test_a_gates_channel_overrides_the_workflows(slack, operator) -> None:  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(SPEC)
    spec["plan"]["nodes"][0]["slack_channel"] = "C0FINANCE"
    _, request = waiting_run(operator, spec)
    assert SlackMessage.objects.get(request=request).channel == "C0FINANCE"


def test_a_bad_channel_name_is_refused_naming_the_field(operator) -> None:  # type: ignore[no-untyped-def]
    from workflows.plans import PlanInvalid

    with pytest.raises(PlanInvalid) as exc:
        workflow_create(raw_spec={**SPEC, "slack_channel": "<!channel>"}, actor=operator)
    assert any(e.field == "slack_channel" for e in exc.value.errors)


def test_slack_off_means_no_endpoint_and_no_messages(settings, operator) -> None:  # type: ignore[no-untyped-def]
    settings.AGENTOS_SLACK_BOT_TOKEN = ""
    _, request = waiting_run(operator)
    assert not SlackMessage.objects.filter(request=request).exists()
    assert Client().post("/integrations/slack/interactions", {}).status_code == 404


def test_the_token_never_reaches_a_message_or_the_log(slack, operator, caplog) -> None:  # type: ignore[no-untyped-def]
    _, request = waiting_run(operator)
    slack.fail_next("chat.postMessage", 500)
    message_sync(request_id=request.pk, post=True)
    message_sync(request_id=request.pk, post=True)
    assert TOKEN not in caplog.text
    assert all(TOKEN not in json.dumps(c["body"]) for c in slack.calls)
    assert TOKEN not in SlackMessage.objects.get(request=request).last_error
    assert Group.objects.filter(name="Reviewers").exists()


def test_a_token_without_a_signing_secret_is_a_warning(settings) -> None:  # type: ignore[no-untyped-def]
    from approvals.checks import check_slack

    settings.AGENTOS_SLACK_BOT_TOKEN = TOKEN
    settings.AGENTOS_SLACK_SIGNING_SECRET = ""
    assert [w.id for w in check_slack(None)] == ["agentos.W021"]
    settings.AGENTOS_SLACK_SIGNING_SECRET = SECRET
    assert check_slack(None) == []


def test_a_gate_inside_a_parallel_branch_keeps_its_channel(slack, operator) -> None:  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(SPEC)
    gate = {**spec["plan"]["nodes"][0], "slack_channel": "C0FINANCE"}
    spec["plan"]["nodes"][0] = {
        "id": "both",
        "type": "parallel",
        "branches": [{"nodes": [gate]}, {"nodes": [spec["plan"]["nodes"].pop(1)]}],
    }
    _, request = waiting_run(operator, spec)
    assert request.node_path == "both/0/gate"
    assert SlackMessage.objects.get(request=request).channel == "C0FINANCE"
