"""Slack interactions: signed clicks and modals, decided under the inbox's rules.

Clicks are posted to AgentOS signed as Slack signs them; the engine runs
in-process and its actions in real subprocesses.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from django.test import Client

from approvals.models import RequestStatus
from approvals.services import approval_decide
from approvals.slack.services import message_sync
from approvals.slack.signing import verify
from tests.integrations.slack_flows import (
    SECRET,
    SPEC,
    posted,
    texts,
    waiting_run,
)
from tests.support.slack import click, signed_post
from workflows.engine import run_advance
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


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
