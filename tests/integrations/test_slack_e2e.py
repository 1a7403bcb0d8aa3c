"""End to end without a browser: request → Slack message → signed click → run resumes.

A real qcluster advances the run and talks to the Slack stand-in; the click
is posted to AgentOS signed as Slack signs it.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from approvals.models import ApprovalRequest, RequestStatus, SlackMessage
from tests.integrations.slack_flows import SECRET, SPEC, TOKEN
from tests.support.slack import FakeSlack, click, signed_post
from tests.support.waiting import wait_for
from workflows.models import Run
from workflows.services import run_create, workflow_create


@pytest.mark.worker
def test_a_click_in_slack_resumes_the_run_and_updates_the_message(
    cluster, operator, reviewer, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    slack = FakeSlack(TOKEN).start()
    try:
        for name, value in {
            "AGENTOS_SLACK_BOT_TOKEN": TOKEN,
            "AGENTOS_SLACK_SIGNING_SECRET": SECRET,
            "AGENTOS_SLACK_API_URL": slack.url,
        }.items():
            monkeypatch.setenv(name, value)  # for the worker
            setattr(settings, name, value)  # for this process (the web side)
        slack.users["reviewer@example.com"] = "UREVIEWER"
        cluster()
        workflow = workflow_create(raw_spec=SPEC, actor=operator)
        run = run_create(workflow=workflow, requester=operator, context={"name": "Ada"})

        message = wait_for(
            lambda: (slack.of("chat.postMessage") or [None])[-1],
            timeout=60,
            message="the request posted to Slack by the worker",
        )
        request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
        assert message["channel"] == "#approvals"
        assert json.loads(
            next(b for b in message["blocks"] if b["type"] == "actions")["elements"][0]["value"]
        ) == {"request": request.pk, "digest": request.digest}
        wait_for(
            lambda: SlackMessage.objects.filter(request=request).exclude(ts="").exists(),
            message="the message's ts recorded",
        )

        response = signed_post(Client(), SECRET, click(message, "approve", user="UREVIEWER"))
        assert response.status_code == 200

        wait_for(
            lambda: Run.objects.get(pk=run.pk).status == "succeeded",
            timeout=60,
            message="the run resumed by the worker",
        )
        update = wait_for(
            lambda: [u for u in slack.of("chat.update") if "Approved" in json.dumps(u)],
            timeout=60,
            message="the message updated after the decision",
        )
        assert "*Approved* by reviewer in Slack at" in json.dumps(update[-1]["blocks"])
        assert slack.problems == []
    finally:
        slack.stop()


@pytest.mark.worker
def test_a_rate_limited_post_is_retried_by_the_workers_scheduler(
    cluster, operator, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Slack answers 429 first: the worker schedules the retry, which posts."""
    slack = FakeSlack(TOKEN).start()
    try:
        for name, value in {
            "AGENTOS_SLACK_BOT_TOKEN": TOKEN,
            "AGENTOS_SLACK_SIGNING_SECRET": SECRET,
            "AGENTOS_SLACK_API_URL": slack.url,
        }.items():
            monkeypatch.setenv(name, value)
            setattr(settings, name, value)
        slack.fail_next("chat.postMessage", 429, retry_after=1)
        cluster()
        workflow = workflow_create(raw_spec=SPEC, actor=operator)
        run = run_create(workflow=workflow, requester=operator, context={"name": "Ada"})
        wait_for(
            lambda: Run.objects.get(pk=run.pk).status == "waiting",
            timeout=60,
            message="the run waiting at its gate",
        )
        # The django-q2 scheduler looks at schedules every ~15 s.
        wait_for(
            lambda: slack.of("chat.postMessage"),
            timeout=90,
            every=0.5,
            message="the retried post",
        )
        refused = [c for c in slack.calls if c["method"] == "chat.postMessage" and not c["ok"]]
        assert len(refused) == 1
        wait_for(
            lambda: (
                SlackMessage.objects.filter(request__run_id=run.pk, attempts=0)
                .exclude(ts="")
                .exists()
            ),
            message="the message's state after the retry",
        )
        from django_q.models import Schedule

        assert not Schedule.objects.filter(func="approvals.slack.tasks.message_sync").exists()
    finally:
        slack.stop()
