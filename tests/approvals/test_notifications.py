"""Notifications: the signed webhook for requested and decided, through a real worker."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.conf import settings

from approvals.models import WorkflowWebhook
from approvals.notifications import SIGNATURE_HEADER, webhook_deliver
from approvals.services import approval_decide
from tests.admin.support import pending_request
from tests.approvals.servers import receiver  # noqa: F401 - fixture
from tests.conftest import wait_for
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


def expected_signature(body: bytes) -> str:
    secret = settings.AGENTOS_SECRETS["TEST_TOKEN"].encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@pytest.mark.worker
def test_a_workflow_webhook_is_signed_for_requested_and_decided(
        cluster, receiver, operator, reviewer) -> None:  # noqa: F811
    workflow = workflow_create(raw_spec=parse_spec_text(SPEC), actor=operator)
    WorkflowWebhook.objects.create(workflow=workflow, url=receiver.url, secret_name="TEST_TOKEN")
    cluster()
    run = run_create(workflow=workflow, requester=operator)
    wait_for(lambda: len(receiver.calls) >= 1, message="the approval.requested webhook")
    requested = receiver.calls[0]
    assert requested["json"]["event"] == "approval.requested"
    assert requested["json"]["request"]["run"] == run.pk
    assert requested["headers"][SIGNATURE_HEADER.lower()] == expected_signature(requested["body"])
    assert settings.AGENTOS_SECRETS["TEST_TOKEN"] not in requested["body"].decode()

    approval_decide(request_id=pending_request(run).pk, actor=reviewer, decision="approve")
    wait_for(lambda: len(receiver.calls) >= 2, message="the approval.decided webhook")
    decided = receiver.calls[1]
    assert decided["json"]["event"] == "approval.decided"
    assert decided["json"]["request"]["decided_by"] == "reviewer"
    assert decided["headers"][SIGNATURE_HEADER.lower()] == expected_signature(decided["body"])
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "succeeded", message="the run")


@pytest.mark.django_db
def test_a_webhook_whose_secret_is_unset_is_not_sent_unsigned(operator, receiver) -> None:  # noqa: F811
    workflow = workflow_create(raw_spec=parse_spec_text(SPEC), actor=operator)
    hook = WorkflowWebhook.objects.create(workflow=workflow, url=receiver.url,
                                          secret_name="NOT_SET")
    assert webhook_deliver(hook.pk, {"event": "approval.requested"}) == 0
    assert receiver.calls == []
