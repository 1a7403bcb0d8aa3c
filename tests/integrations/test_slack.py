"""Approvals in Slack, against a local stand-in of Slack's Web API.

The stand-in (tests/support/slack.py) is a real HTTP server that checks the
bot token and the shape of every call; clicks are posted to AgentOS signed
as Slack signs them. The engine runs in-process here and its actions in real
subprocesses; test_slack_e2e.py does the same with a real qcluster.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from approvals.models import ApprovalRequest, RequestStatus, SlackMessage
from approvals.services import approval_decide, requests_expire
from approvals.slack.services import message_sync
from approvals.slack.signing import verify
from tests.support.slack import FakeSlack, click, signed_post
from workflows.engine import run_advance
from workflows.models import Run
from workflows.services import run_cancel, run_create, workflow_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db
SECRET = "slack-signing-secret-for-tests"
TOKEN = "xoxb-test-token"

SPEC: dict[str, Any] = {
    "slug": "laptop",
    "title": "Order a laptop",
    "mode": "autonomous",
    "slack_channel": "#approvals",
    "inputs": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}},
    },
    "plan": {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "Order a laptop for {{ name }}?"},
            {
                "id": "check",
                "action": "verify.value_equals",
                "params": {"value": "{{ name }}", "expected": "{{ name }}"},
            },
        ]
    },
}


@pytest.fixture
def slack(settings) -> Iterator[FakeSlack]:  # type: ignore[no-untyped-def]
    fake = FakeSlack(TOKEN).start()
    settings.AGENTOS_SLACK_BOT_TOKEN = TOKEN
    settings.AGENTOS_SLACK_SIGNING_SECRET = SECRET
    settings.AGENTOS_SLACK_API_URL = fake.url
    yield fake
    fake.stop()
    assert fake.problems == [], "calls Slack would refuse"


@pytest.fixture
def alice(roles):  # type: ignore[no-untyped-def]
    """A second reviewer, known to Slack as UALICE."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("alice", "Alice@Example.com", "pw")
    user.groups.add(roles["Reviewers"])
    return user


def waiting_run(operator, spec: dict | None = None, **context: Any) -> tuple[Run, ApprovalRequest]:  # type: ignore[no-untyped-def]
    workflow = workflow_create(raw_spec=spec or SPEC, actor=operator)
    run = run_create(workflow=workflow, requester=operator, context={"name": "Ada", **context})
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING, run.error
    return run, ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)


def posted(slack: FakeSlack, request: ApprovalRequest) -> dict[str, Any]:
    assert message_sync(request_id=request.pk, post=True) == "synced"
    return slack.of("chat.postMessage")[-1]


def texts(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"])


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
    # Nothing changed: no second call.
    assert message_sync(request_id=request.pk) == "unchanged"


def test_a_signed_click_approves_and_the_message_says_who_where_when(
    slack, operator, alice
) -> None:  # type: ignore[no-untyped-def]
    run, request = waiting_run(operator)
    message = posted(slack, request)
    slack.users["alice@example.com"] = "UALICE"
    response = signed_post(Client(), SECRET, click(message, "approve", user="UALICE"))
    assert response.status_code == 200
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert request.decided_by == alice
    from workflows.models import Event

    noted = Event.objects.get(run=run, type="approval.slack")
    assert noted.data == {
        "request": request.pk,
        "node": "gate",
        "decision": "approve",
        "slack_user": "UALICE",
    }
    assert noted.actor == alice
    decided = Event.objects.get(run=run, type="approval.decided")
    assert noted.seq < decided.seq
    from workflows.events import verify_all

    assert verify_all() == []
    lookups = slack.of("users.lookupByEmail")
    assert {"email": "alice@example.com"} in lookups
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error

    assert message_sync(request_id=request.pk) == "synced"
    update = slack.of("chat.update")[-1]
    assert "*Approved* by alice in Slack at" in texts(update)
    assert "approve" not in [
        e.get("action_id")
        for b in update["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def test_bad_stale_and_replayed_deliveries_are_refused_with_401_and_change_nothing(
    slack, operator, alice
) -> None:  # type: ignore[no-untyped-def]
    run, request = waiting_run(operator)
    message = posted(slack, request)
    slack.users["alice@example.com"] = "UALICE"
    payload = click(message, "approve", user="UALICE")
    client = Client()

    assert signed_post(client, "not-the-secret", payload).status_code == 401
    old = signed_post(client, SECRET, payload, at=time.time() - 301)
    assert old.status_code == 401
    assert "5 minutes" in old.json()["detail"]
    unsigned = client.post("/integrations/slack/interactions", {"payload": json.dumps(payload)})
    assert unsigned.status_code == 401
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert slack.of("users.lookupByEmail") == []  # refused before anything was read

    at = time.time()
    assert signed_post(client, SECRET, payload, at=at).status_code == 200
    replay = signed_post(client, SECRET, payload, at=at)
    assert replay.status_code == 401
    assert "already received" in replay.json()["detail"]


def test_the_signature_check_itself() -> None:
    from approvals.slack.signing import sign

    body, now = b"payload=%7B%7D", 1_700_000_000
    good = sign(SECRET, str(now), body)
    assert verify(SECRET, str(now), good, body, now=now) == ""
    assert verify(SECRET, str(now), good, body + b"x", now=now) == "bad X-Slack-Signature"
    assert "5 minutes" in verify(SECRET, str(now), good, body, now=now + 301)
    assert "5 minutes" in verify(SECRET, str(now), good, body, now=now - 301)
    assert verify("", str(now), good, body, now=now) != ""


def test_an_unknown_slack_user_is_told_so_and_nothing_changes(slack, operator, alice) -> None:  # type: ignore[no-untyped-def]
    _, request = waiting_run(operator)
    message = posted(slack, request)
    response = signed_post(Client(), SECRET, click(message, "approve", user="USTRANGER"))
    assert response.status_code == 200
    note = slack.of("chat.postEphemeral")[-1]
    assert note["user"] == "USTRANGER" and "does not know you" in note["text"]
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    from workflows.models import Event

    assert not Event.objects.filter(type="approval.slack").exists()


def test_four_eyes_binds_in_slack(slack, roles, alice) -> None:  # type: ignore[no-untyped-def]
    """The run's requester cannot approve it from Slack either."""
    alice.groups.add(roles["Operators"])
    _, request = waiting_run(alice)
    message = posted(slack, request)
    slack.users["alice@example.com"] = "UALICE"
    signed_post(Client(), SECRET, click(message, "approve", user="UALICE"))
    assert "four-eyes" in slack.of("chat.postEphemeral")[-1]["text"]
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    from workflows.events import verify_all
    from workflows.models import Event

    # The refused click left no event, and the chain is whole.
    assert not Event.objects.filter(type="approval.slack").exists()
    assert verify_all() == []


def test_a_person_outside_the_assigned_group_is_refused(slack, operator, roles) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    spec = copy.deepcopy(SPEC)
    spec["plan"]["nodes"][0]["assign_to"] = "Finance"
    bob = get_user_model().objects.create_user("bob", "bob@example.com", "pw")
    bob.groups.add(roles["Reviewers"])
    _, request = waiting_run(operator, spec)
    message = posted(slack, request)
    slack.users["bob@example.com"] = "UBOB"
    signed_post(Client(), SECRET, click(message, "approve", user="UBOB"))
    assert "assigned to Finance" in slack.of("chat.postEphemeral")[-1]["text"]
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_a_click_after_a_decision_elsewhere_says_who_decided(
    slack, operator, reviewer, alice
) -> None:  # type: ignore[no-untyped-def]
    _, request = waiting_run(operator)
    message = posted(slack, request)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    slack.users["alice@example.com"] = "UALICE"
    signed_post(Client(), SECRET, click(message, "approve", user="UALICE"))
    assert slack.of("chat.postEphemeral")[-1]["text"] == (
        "This request was already decided by reviewer."
    )
    request.refresh_from_db()
    assert request.decided_by == reviewer
    assert message_sync(request_id=request.pk) == "synced"
    assert "*Approved* by reviewer in AgentOS at" in texts(slack.of("chat.update")[-1])


def test_a_button_whose_digest_is_stale_is_refused(slack, operator, alice) -> None:  # type: ignore[no-untyped-def]
    _, request = waiting_run(operator)
    message = posted(slack, request)
    payload = click(message, "approve", user="UALICE")
    payload["actions"][0]["value"] = json.dumps({"request": request.pk, "digest": "0" * 64})
    slack.users["alice@example.com"] = "UALICE"
    signed_post(Client(), SECRET, payload)
    assert "changed since you opened it" in slack.of("chat.postEphemeral")[-1]["text"]
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_a_quorum_counts_slack_votes_and_shows_them(slack, operator, reviewer, alice) -> None:  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(SPEC)
    spec["plan"]["nodes"][0]["quorum"] = 2
    _, request = waiting_run(operator, spec)
    message = posted(slack, request)
    slack.users.update({"alice@example.com": "UALICE", "reviewer@example.com": "UREV"})
    signed_post(Client(), SECRET, click(message, "approve", user="UALICE"))
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert message_sync(request_id=request.pk) == "synced"
    assert "1 of 2 approvals: alice" in texts(slack.of("chat.update")[-1])
    signed_post(Client(), SECRET, click(message, "approve", user="UREV"))
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


def test_reject_asks_a_reason_in_a_modal(slack, operator, alice) -> None:  # type: ignore[no-untyped-def]
    run, request = waiting_run(operator)
    message = posted(slack, request)
    slack.users["alice@example.com"] = "UALICE"
    signed_post(Client(), SECRET, click(message, "reject", user="UALICE"))
    view = slack.of("views.open")[-1]["view"]
    assert view["title"]["text"] == "Reject"
    submission = {
        "type": "view_submission",
        "user": {"id": "UALICE"},
        "view": {
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": {"comment": {"value": {"type": "plain_text_input", "value": ""}}}},
        },
    }
    empty = signed_post(Client(), SECRET, submission)
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"comment": "a reason is required to reject"},
    }
    submission["view"]["state"]["values"]["comment"]["value"]["value"] = "Not this quarter"
    assert signed_post(Client(), SECRET, submission).status_code == 200
    request.refresh_from_db()
    run.refresh_from_db()
    assert (request.status, request.comment) == (RequestStatus.REJECTED, "Not this quarter")
    assert run.status == RunStatus.FAILED
    assert message_sync(request_id=request.pk) == "synced"
    assert "*Rejected* by alice in Slack" in texts(slack.of("chat.update")[-1])


INPUT_SPEC: dict[str, Any] = {
    **SPEC,
    "slug": "laptop-input",
    "plan": {
        "nodes": [
            {
                "id": "details",
                "type": "input",
                "title": "Laptop details for {{ name }}",
                "fields": {
                    "model": {"type": "string", "enum": ["X1", "M3"], "title": "Model"},
                    "count": {"type": "integer", "minimum": 1, "title": "How many"},
                    "ship_on": {"type": "string", "format": "date", "title": "Ship on"},
                    "note": {"type": "string", "title": "Note"},
                },
                "required": ["model", "count", "ship_on"],
            },
            {
                "id": "check",
                "action": "verify.value_equals",
                "params": {"value": "{{ model }}", "expected": "M3"},
            },
        ]
    },
}


def test_an_input_request_opens_a_typed_modal(slack, operator, alice) -> None:  # type: ignore[no-untyped-def]
    run, request = waiting_run(operator, INPUT_SPEC)
    message = posted(slack, request)
    slack.users["alice@example.com"] = "UALICE"
    signed_post(Client(), SECRET, click(message, "fill", user="UALICE"))
    view = slack.of("views.open")[-1]["view"]
    elements = {
        b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"
    }
    assert elements == {
        "field:model": "static_select",
        "field:count": "number_input",
        "field:ship_on": "datepicker",
        "field:note": "plain_text_input",
        "comment": "plain_text_input",
    }

    def submit(count: str) -> Any:
        values = {
            "field:model": {
                "value": {"type": "static_select", "selected_option": {"value": '"M3"'}}
            },
            "field:count": {"value": {"type": "number_input", "value": count}},
            "field:ship_on": {"value": {"type": "datepicker", "selected_date": "2026-12-24"}},
            "field:note": {"value": {"type": "plain_text_input", "value": None}},
        }
        return signed_post(
            Client(),
            SECRET,
            {
                "type": "view_submission",
                "user": {"id": "UALICE"},
                "view": {
                    "callback_id": view["callback_id"],
                    "private_metadata": view["private_metadata"],
                    "state": {"values": values},
                },
            },
        )

    bad = submit("0").json()
    assert bad["response_action"] == "errors"
    assert list(bad["errors"]) == ["field:count"]
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING

    assert submit("2").status_code == 200
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert request.values == {"model": "M3", "count": 2, "ship_on": "2026-12-24"}
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error


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


def waiting_run_again(operator) -> tuple[Run, ApprovalRequest]:  # type: ignore[no-untyped-def]
    from workflows.models import Workflow

    workflow = Workflow.objects.get(slug="laptop")
    run = run_create(workflow=workflow, requester=operator, context={"name": "Bo"})
    run_advance(run_id=run.pk)
    return run, ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)


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


def test_bad_payloads_are_4xx_never_500(slack) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import urlencode

    from approvals.slack.signing import sign

    client = Client()
    for body in ("payload=not-json", "nothing=1", urlencode({"payload": "[1]"})):
        ts = str(int(time.time()))
        response = client.post(
            "/integrations/slack/interactions",
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers={
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sign(SECRET, ts, body.encode()),
            },
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "payload"
    bad_value = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "actions": [{"action_id": "approve", "value": "{not json"}],
    }
    response = signed_post(client, SECRET, bad_value)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "actions.value"
    forged = {
        "type": "view_submission",
        "user": {"id": "U1"},
        "view": {"callback_id": "agentos_decision", "private_metadata": "{}"},
    }
    response = signed_post(client, SECRET, forged)
    assert response.status_code == 400


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


def test_two_people_sharing_an_email_are_never_guessed(slack, operator, alice, roles) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    twin = get_user_model().objects.create_user("alice2", "alice@example.com", "pw")
    twin.groups.add(roles["Reviewers"])
    _, request = waiting_run(operator)
    message = posted(slack, request)
    slack.users["alice@example.com"] = "UALICE"
    signed_post(Client(), SECRET, click(message, "approve", user="UALICE"))
    assert "does not know you" in slack.of("chat.postEphemeral")[-1]["text"]
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_a_known_clicker_costs_no_lookup(slack, operator, alice, reviewer) -> None:  # type: ignore[no-untyped-def]
    spec = copy.deepcopy(SPEC)
    spec["plan"]["nodes"][0]["quorum"] = 2
    _, request = waiting_run(operator, spec)
    message = posted(slack, request)
    slack.users.update({"alice@example.com": "UALICE", "reviewer@example.com": "UREV"})
    signed_post(Client(), SECRET, click(message, "approve", user="UALICE"))
    lookups = len(slack.of("users.lookupByEmail"))
    # A second delivery (another timestamp, so not a replay).
    again = signed_post(
        Client(), SECRET, click(message, "approve", user="UALICE"), at=time.time() - 2
    )
    assert again.status_code == 200
    assert len(slack.of("users.lookupByEmail")) == lookups
    assert "already approved" in slack.of("chat.postEphemeral")[-1]["text"]


def test_signed_payloads_of_any_shape_are_never_a_500(slack, operator, alice) -> None:  # type: ignore[no-untyped-def]
    """Slack's payload is data: odd shapes are 200 (ignored) or 400, nothing decided."""
    _, request = waiting_run(operator)
    message = posted(slack, request)
    slack.users["alice@example.com"] = "UALICE"
    good = click(message, "approve", user="UALICE")
    view = {"callback_id": "agentos_decision"}
    meta = json.dumps({"request": request.pk, "digest": request.digest, "decision": "approve"})
    shapes: list[Any] = [
        {},
        {"type": None},
        {"type": "block_actions"},
        {"type": "block_actions", "actions": "x"},
        {"type": "block_actions", "actions": [None]},
        {**good, "user": "UALICE"},
        {**good, "user": {"id": ["UALICE"]}},
        {**good, "actions": [{"action_id": "approve", "value": '{"request": 1e400}'}]},
        {**good, "actions": [{"action_id": "approve", "value": f'{{"request": {10**30}}}'}]},
        {**good, "actions": [{"action_id": "approve", "value": '{"request": -1, "digest": ""}'}]},
        {"type": "view_submission", "user": {"id": "UALICE"}, "view": "x"},
        {"type": "view_submission", "user": {"id": "UALICE"}, "view": view},
        {
            "type": "view_submission",
            "user": {"id": "UALICE"},
            "view": {**view, "private_metadata": json.dumps({"request": 10**30})},
        },
        {
            "type": "view_submission",
            "user": {"id": "UALICE"},
            "view": {**view, "private_metadata": meta, "state": "x"},
        },
        {
            "type": "view_submission",
            "user": {"id": "UALICE"},
            "view": {**view, "private_metadata": meta, "state": {"values": {"comment": []}}},
        },
        {
            "type": "view_submission",
            "user": {"id": "UALICE"},
            "view": {
                **view,
                "private_metadata": meta,
                "state": {"values": {"field:x": {"value": {"type": "static_select"}}}},
            },
        },
    ]
    for i, shape in enumerate(shapes):
        response = signed_post(Client(), SECRET, shape, at=time.time() - i)
        assert response.status_code in (200, 400), (shape, response.content)
    request.refresh_from_db()
    # A form of AgentOS's whose state is not an object carries no values,
    # and this gate asks for none: that one approval is the only change.
    assert (request.status, request.decided_by) == (RequestStatus.APPROVED, alice)
