"""Notifications: the signed webhook for requested and decided, through a real worker."""

from __future__ import annotations

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import override_settings

from approvals.models import WorkflowWebhook
from approvals.notifications import (
    SIGNATURE_HEADER,
    sign,
    verify_signature,
    webhook_deliver,
    webhook_problems,
)
from approvals.services import approval_decide
from tests.support.runs import pending_request
from tests.support.waiting import wait_for
from workflows.models import Run
from workflows.plans import parse_spec_text
from workflows.services import run_create, workflow_create

SPEC = """\
slug: hooked
title: Hooked workflow
mode: autonomous
plan:
  nodes:
    - id: gate
      type: approval
      title: "Go?"
"""


KEY = "WEBHOOK_TEST_KEY"  # tests/settings.py sets AGENTOS_SECRET_WEBHOOK_TEST_KEY


def expected_signature(body: bytes, header: str) -> str:
    """Recompute the header as a receiver would: HMAC-SHA256 over "t." + body."""
    timestamp = header.split(",")[0].removeprefix("t=")
    secret = settings.AGENTOS_SECRETS[KEY].encode()
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def origin(url: str) -> str:
    return url.split("/hook")[0]


@pytest.mark.worker
def test_a_workflow_webhook_is_signed_for_requested_and_decided(
    cluster, receiver, operator, reviewer, monkeypatch
) -> None:
    workflow = workflow_create(raw_spec=parse_spec_text(SPEC), actor=operator)
    WorkflowWebhook.objects.create(workflow=workflow, url=receiver.url, secret_name=KEY)
    # The receiver's ephemeral port is allowed explicitly, for the worker.
    monkeypatch.setenv("AGENTOS_WEBHOOK_ALLOWED_HOSTS", origin(receiver.url))
    cluster()
    run = run_create(workflow=workflow, requester=operator)
    wait_for(lambda: len(receiver.calls) >= 1, message="the approval.requested webhook")
    requested = receiver.calls[0]
    assert requested["json"]["event"] == "approval.requested"
    assert requested["json"]["request"]["run"] == run.pk
    header = requested["headers"][SIGNATURE_HEADER.lower()]
    assert header == expected_signature(requested["body"], header)
    assert verify_signature(settings.AGENTOS_SECRETS[KEY], header, requested["body"])
    assert settings.AGENTOS_SECRETS[KEY] not in requested["body"].decode()

    approval_decide(request_id=pending_request(run).pk, actor=reviewer, decision="approve")
    wait_for(lambda: len(receiver.calls) >= 2, message="the approval.decided webhook")
    decided = receiver.calls[1]
    assert decided["json"]["event"] == "approval.decided"
    assert decided["json"]["request"]["decided_by"] == "reviewer"
    header = decided["headers"][SIGNATURE_HEADER.lower()]
    assert header == expected_signature(decided["body"], header)
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "succeeded", message="the run")


@pytest.mark.django_db
def test_a_webhook_whose_secret_is_unset_is_not_sent_unsigned(operator, receiver) -> None:
    workflow = workflow_create(raw_spec=parse_spec_text(SPEC), actor=operator)
    hook = WorkflowWebhook.objects.create(
        workflow=workflow, url=receiver.url, secret_name="WEBHOOK_NOT_SET"
    )
    with override_settings(AGENTOS_WEBHOOK_ALLOWED_HOSTS=[origin(receiver.url)]):
        assert webhook_deliver(hook.pk, {"event": "approval.requested"}) == 0
    assert receiver.calls == []


class Redirector:
    """A server whose every POST is answered with a redirect to the receiver."""

    def __init__(self, to: str) -> None:
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.posts += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(307)
                self.send_header("Location", to)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.django_db
def test_webhook_urls_pass_the_host_policy_and_keys_come_from_their_namespace(
    operator, receiver
) -> None:
    workflow = workflow_create(raw_spec=parse_spec_text(SPEC), actor=operator)
    allowed = origin(receiver.url)
    with override_settings(AGENTOS_WEBHOOK_ALLOWED_HOSTS=[allowed]):
        for url, name, fields in [
            ("http://169.254.169.254/latest/meta-data/", KEY, {"url"}),
            (receiver.url.replace(allowed.rsplit(":", 1)[1], "6379"), KEY, {"url"}),
            (receiver.url, "HR_PORTAL_PASSWORD", {"secret_name"}),
            (receiver.url, "TEST_TOKEN", {"secret_name"}),
            (receiver.url, KEY, set()),
        ]:
            WorkflowWebhook.objects.filter(workflow=workflow).delete()
            hook = WorkflowWebhook(workflow=workflow, url=url, secret_name=name)
            if fields:
                with pytest.raises(ValidationError) as caught:
                    hook.full_clean()
                assert set(caught.value.message_dict) == fields
            else:
                hook.full_clean()
            hook.save()  # around the form (the ORM, an old row): delivery checks again
            status = webhook_deliver(hook.pk, {"event": "approval.requested"})
            assert (status == 204) == (not fields), (url, name, status)
    assert len(receiver.calls) == 1
    assert receiver.calls[0]["headers"][SIGNATURE_HEADER.lower()].startswith("t=")


@pytest.mark.django_db
def test_a_webhook_host_resolving_to_an_address_not_allowed_is_not_called(
    operator, receiver
) -> None:
    workflow = workflow_create(raw_spec=parse_spec_text(SPEC), actor=operator)
    port = origin(receiver.url).rsplit(":", 1)[1]
    # 2130706433 resolves to 127.0.0.1, which this allow-list does not name.
    hook = WorkflowWebhook.objects.create(
        workflow=workflow, secret_name=KEY, url=f"http://2130706433:{port}/hook"
    )
    with override_settings(AGENTOS_WEBHOOK_ALLOWED_HOSTS=[f"http://2130706433:{port}"]):
        # The origin is on the list; its address is checked on delivery.
        assert webhook_problems(hook.url, KEY) == {}
        assert webhook_deliver(hook.pk, {"event": "approval.requested"}) == 0
    assert receiver.calls == []


@pytest.mark.django_db
def test_a_webhook_redirect_is_not_followed(operator, receiver) -> None:
    workflow = workflow_create(raw_spec=parse_spec_text(SPEC), actor=operator)
    redirector = Redirector(receiver.url)
    try:
        hook = WorkflowWebhook.objects.create(
            workflow=workflow, url=redirector.url, secret_name=KEY
        )
        with override_settings(
            AGENTOS_WEBHOOK_ALLOWED_HOSTS=[origin(redirector.url), origin(receiver.url)]
        ):
            assert webhook_deliver(hook.pk, {"event": "approval.requested"}) == 307
    finally:
        redirector.server.shutdown()
        redirector.server.server_close()
    assert redirector.posts == 1 and receiver.calls == []


def test_signatures_carry_a_timestamp_and_old_ones_are_refused() -> None:
    body = b'{"event":"approval.requested"}'
    now = 1_800_000_000
    header = sign("k", body, now)
    mac = hmac.new(b"k", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={now},v1={mac}"
    assert verify_signature("k", header, body, now=now + 299, tolerance_s=300)
    assert not verify_signature("k", header, body, now=now + 301, tolerance_s=300)  # replay
    assert not verify_signature("k", header, body + b" ", now=now, tolerance_s=300)
    assert not verify_signature("other", header, body, now=now, tolerance_s=300)
    assert not verify_signature("k", f"t={now + 1},v1={mac}", body, now=now, tolerance_s=300)
    assert not verify_signature("k", "sha256=" + mac, body, now=now, tolerance_s=300)
