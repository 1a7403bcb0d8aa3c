"""What the Slack tests share: a workflow posting to Slack, and runs waiting at its gate."""

from __future__ import annotations

import json
from typing import Any

from approvals.models import ApprovalRequest, RequestStatus
from approvals.slack.services import message_sync
from tests.support.slack import FakeSlack
from workflows.engine import run_advance
from workflows.models import Run
from workflows.services import run_create, workflow_create
from workflows.states import RunStatus

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


def waiting_run_again(operator) -> tuple[Run, ApprovalRequest]:  # type: ignore[no-untyped-def]
    from workflows.models import Workflow

    workflow = Workflow.objects.get(slug="laptop")
    run = run_create(workflow=workflow, requester=operator, context={"name": "Bo"})
    run_advance(run_id=run.pk)
    return run, ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
