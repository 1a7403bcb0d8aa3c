"""One redaction on every surface: a secret value stored in a run never reaches a person.

A configured secret (AGENTOS_SECRET_TEST_TOKEN) and a value under a
secret-named key (`password`) are put everywhere a run keeps data: its
context (and so its run.created event), its error, a step's parameters,
output, log and error, and its request's values and state. Every surface
that shows them (the API, the inbox, the admin's pages, the websocket feeds,
the audit export) must show them masked, and must show the mask.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from agentos_common.redaction import SECRET_MASK
from approvals import live
from approvals.models import ApprovalRequest
from tests.admin.support import client_for
from tests.api.conftest import api_for
from tests.support.websockets import connect
from workflows.engine import run_advance
from workflows.models import Event, Run, Step
from workflows.services import run_create, workflow_create

PLAIN = "hunter2-plain"  # not a configured secret, but under a `password` key

SPEC = {
    "slug": "secretive",
    "title": "Secretive",
    "mode": "autonomous",
    "inputs": {
        "type": "object",
        "properties": {"note": {"type": "string"}, "password": {"type": "string"}},
    },
    "plan": {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]},
}


def secret() -> str:
    return settings.AGENTOS_SECRETS["TEST_TOKEN"]


@pytest.fixture
def secretive_run(operator) -> Run:  # type: ignore[no-untyped-def]
    workflow = workflow_create(raw_spec=SPEC, actor=operator)
    run = run_create(
        workflow=workflow,
        requester=operator,
        context={"note": f"key {secret()}", "password": PLAIN},
    )
    run_advance(run_id=run.pk)
    Run.objects.filter(pk=run.pk).update(error=f"refused with {secret()}")
    Step.objects.create(
        run_id=run.pk,
        node_id="gate",
        position=0,
        action="test.noop",
        status="failed",
        idempotency_key="redaction",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        params={"url": f"https://example.test/?k={secret()}", "password": PLAIN},
        output={"echo": secret()},
        evidence={"log": f"logged in with {secret()}"},
        error=f"failed with {secret()}",
    )
    ApprovalRequest.objects.filter(run_id=run.pk).update(
        values={"note": secret(), "api_key": PLAIN}, state={"seen": secret()}
    )
    return Run.objects.get(pk=run.pk)


def assert_masked(where: str, body: str) -> None:
    assert secret() not in body, f"{where} shows the secret value"
    assert PLAIN not in body, f"{where} shows a value under a secret-named key"
    assert SECRET_MASK in body, f"{where} shows no masked value at all"


def test_the_one_redaction_masks_values_anywhere_and_secret_named_keys() -> None:
    from agentos_common.redaction import redact

    data = {
        "url": "https://x/?k=abc123",
        "nested": [{"Password": "p", "token": None}],
        "abc123": 1,
        "api-key": ["k1", {"x": "y"}],
        "ok": "fine",
        "secret_ok": True,
        "token": 17,
        "credentials": {"user": "ada", "pass": "pw"},
        "password": "",
    }
    assert redact(data, ["abc123", ""]) == {
        "url": "https://x/?k=***",
        "nested": [{"Password": "***", "token": None}],
        "***": 1,
        "api-key": ["***", {"x": "y"}],
        "ok": "fine",
        "secret_ok": True,
        "token": 17,
        "credentials": {"user": "ada", "pass": "***"},
        "password": "",
    }
    assert redact("a abc123 b", ["abc123"]) == "a *** b"


@pytest.mark.django_db
def test_the_api_inbox_admin_and_export_mask_secrets(secretive_run, auditor) -> None:
    run = secretive_run
    request = ApprovalRequest.objects.get(run=run)
    event = Event.objects.get(run=run, type="run.created")
    api = api_for(auditor)
    for path in (
        f"/runs/{run.pk}",
        f"/runs/{run.pk}/events",
        "/runs",
        f"/approvals/{request.pk}",
        "/audit",
        "/audit/export",
    ):
        response = api.get(path)
        assert response.status_code == 200, path
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert_masked(f"GET /api/v1{path}", body.decode())
    browser = client_for(auditor)
    pages = {
        "inbox request": reverse("inbox:request", args=[request.pk]),
        "admin run": reverse("admin:workflows_run_change", args=[run.pk]),
        "admin run state": reverse("admin:workflows_run_state", args=[run.pk, 1]),
        "admin request": reverse("admin:approvals_approvalrequest_change", args=[request.pk]),
        "admin event": reverse("admin:workflows_event_change", args=[event.pk]),
        "admin export": reverse("admin:workflows_event_export") + "?format=jsonl",
        "admin export csv": reverse("admin:workflows_event_export") + "?format=csv",
    }
    for where, url in pages.items():
        response = browser.get(url)
        assert response.status_code == 200, where
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert_masked(where, body.decode())


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_websocket_feeds_mask_secrets(secretive_run, auditor) -> None:
    run = secretive_run
    feed, connected, _ = await connect(f"/ws/runs/{run.pk}/", auditor)
    assert connected
    received: list[Any] = []
    while not received or received[-1]["type"] != "caught_up":
        received.append(await feed.receive_json_from(timeout=5))
    assert any(m["type"] == "event" and m["event"]["type"] == "run.created" for m in received)
    runs_feed, connected, _ = await connect("/ws/runs/", auditor)
    assert connected
    event = await database_sync_to_async(Event.objects.get)(run=run, type="run.paused")
    # The live path: what a committed event publishes to a run's group and
    # to the run lists (the snapshot carries the run's error).
    await live.fan_out(get_channel_layer(), event, run)
    listed = await runs_feed.receive_json_from(timeout=5)
    assert listed["type"] == "run" and listed["run"]["id"] == run.pk
    assert_masked("/ws/runs/<id>/", json.dumps(received))
    assert_masked("/ws/runs/", json.dumps(listed))
    await feed.disconnect()
    await runs_feed.disconnect()
