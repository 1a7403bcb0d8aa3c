"""Open, sync and decide requests through Slack.

``slack_message_open`` runs inside the transaction that opens a request
and only writes a row; everything that talks to Slack runs after commit, in
a worker task (posts and updates, retried) or in the interaction view (the
clicker's identity, modals and ephemeral answers, which Slack needs within
three seconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from approvals import slack
from approvals.models import ApprovalRequest, SlackDelivery, SlackMessage
from approvals.permissions import decide_refusal, may_decide_at_all
from approvals.slack import blocks
from approvals.slack.client import SlackClient, SlackError
from workflows.models import Run, WorkflowVersion

logger = logging.getLogger(__name__)
SYNC_TASK = "approvals.slack.tasks.message_sync"
IDENTITY_CACHE_S = 600
MAX_BACKOFF_S = 300


# --- the message -------------------------------------------------------------


def channel_for(run: Run, options: dict[str, Any]) -> str:
    """Return the Slack channel of a request: its gate's, else its workflow's."""
    channel = options.get("slack_channel")
    if channel:
        return str(channel)
    if run.workflow_id is None:
        return ""
    spec = (
        WorkflowVersion.objects.filter(workflow_id=run.workflow_id, version=run.workflow_version)
        .values_list("spec", flat=True)
        .first()
    )
    if spec is None:
        spec = run.workflow.spec
    return str((spec or {}).get("slack_channel") or "")


def slack_message_open(*, request: ApprovalRequest, options: dict[str, Any]) -> None:
    """Record that a new request goes to Slack and post it after commit."""
    if not slack.enabled():
        return
    channel = channel_for(request.run, options)
    if not channel:
        return
    # approvals.notifications.request_opened queues the post after commit.
    SlackMessage.objects.create(request=request, channel=channel)


def message_changed(request_id: int, *, post: bool = False) -> None:
    """Queue the sync of a request's Slack message (after a change committed)."""
    if not slack.enabled() or not SlackMessage.objects.filter(request_id=request_id).exists():
        return
    from django_q.tasks import async_task

    try:
        async_task(
            SYNC_TASK,
            request_id,
            post,
            task_name=f"slack-{request_id}",
            group="slack",
            save=False,
        )
    except Exception:
        logger.exception("request %s: could not queue the Slack update", request_id)


def message_sync(*, request_id: int, post: bool = False) -> str:
    """Post or update a request's message to show it as it is now.

    Only the task queued when the request opened (``post``) posts; later
    changes update the posted message (or are shown by the post, when it
    has not happened yet). Returns what happened, for logs and tests.
    """
    msg = SlackMessage.objects.filter(request_id=request_id).first()
    if msg is None or msg.failed:
        return "none"
    if not msg.ts and not post:
        return "not posted yet"
    outcome = "unchanged"
    for _ in range(3):  # a change that lands while posting is shown at once
        request = _request(request_id)
        text, body = blocks.message(request, msg)
        shown = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if msg.ts and shown == msg.shown:
            return outcome
        client = SlackClient.from_settings()
        run_id = str(request.run.correlation_id)
        try:
            if msg.ts:
                client.call(
                    "chat.update",
                    channel=msg.channel,
                    ts=msg.ts,
                    text=text,
                    blocks=body,
                    correlation_id=run_id,
                )
            else:
                data = client.call(
                    "chat.postMessage",
                    channel=msg.channel,
                    text=text,
                    blocks=body,
                    correlation_id=run_id,
                )
                # chat.update needs the channel's id, not the #name posted to.
                msg.ts, msg.channel = (
                    str(data.get("ts", "")),
                    str(data.get("channel") or msg.channel),
                )
        except SlackError as exc:
            return _retry_later(msg, request_id, exc)
        msg.shown, msg.attempts, msg.last_error = shown, 0, ""
        SlackMessage.objects.filter(pk=msg.pk).update(
            ts=msg.ts, channel=msg.channel, shown=shown, attempts=0, last_error=""
        )
        msg.refresh_from_db()
        outcome = "synced"
    return outcome


def _request(request_id: int) -> ApprovalRequest:
    return ApprovalRequest.objects.select_related(
        "run__workflow", "run__requester", "assigned_group", "assigned_user", "decided_by"
    ).get(pk=request_id)


def _retry_later(msg: SlackMessage, request_id: int, exc: SlackError) -> str:
    """Schedule another attempt (Retry-After, else exponential), or give up."""
    attempts = msg.attempts + 1
    give_up = not exc.retriable or attempts >= settings.AGENTOS_SLACK_MAX_ATTEMPTS
    SlackMessage.objects.filter(pk=msg.pk).update(
        attempts=attempts, last_error=str(exc)[:300], failed=give_up
    )
    if give_up:
        logger.warning(
            "request %s: Slack message given up after %s: %s", request_id, attempts, exc
        )
        return "failed"
    delay = exc.retry_after_s if exc.retry_after_s is not None else min(2**attempts, MAX_BACKOFF_S)
    from django_q.models import Schedule
    from django_q.tasks import schedule

    try:
        schedule(
            SYNC_TASK,
            request_id,
            not msg.ts,
            name=f"slack-{request_id}-{attempts}-{timezone.now().timestamp():.0f}",
            schedule_type=Schedule.ONCE,
            repeats=-1,  # deleted once it has run
            next_run=timezone.now() + timedelta(seconds=max(delay, 1.0)),
        )
    except IntegrityError:  # the same retry is already scheduled
        pass
    logger.info("request %s: Slack said %s; retry %s in %.0fs", request_id, exc, attempts, delay)
    return "retry"


# --- a decision from Slack ----------------------------------------------------


def slack_decide(
    *,
    request_id: int,
    person: Any,
    slack_user: str,
    decision: str,
    digest: str,
    values: dict[str, Any],
    comment: str,
) -> ApprovalRequest:
    """Decide through ``approval_decide`` as ``person``, noting it came from Slack.

    The ``approval.slack`` event (which Slack user, which button) is written
    first, in the same transaction: a refused decision leaves no trace but
    the refusal Slack shows, and an accepted one says where it came from.
    """
    from approvals.services import DecisionInvalid, approval_decide
    from workflows.events import event_append
    from workflows.services import lock_run

    with transaction.atomic():
        run_id = (
            ApprovalRequest.objects.filter(pk=request_id).values_list("run_id", flat=True).first()
        )
        if run_id is None:
            raise DecisionInvalid({"request": f"no request {request_id}"})
        node = ApprovalRequest.objects.values_list("node_id", flat=True).get(pk=request_id)
        event_append(
            run=lock_run(run_id),
            type="approval.slack",
            actor=person,
            data={
                "request": request_id,
                "node": node,
                "decision": decision,
                "slack_user": slack_user,
            },
        )
        decided = approval_decide(
            request_id=request_id,
            actor=person,
            decision=decision,
            values=values,
            comment=comment,
            digest=digest,
        )
        if not decided.is_pending:
            # Read by the message update queued when this commits.
            SlackMessage.objects.filter(request_id=request_id).update(decided_via="Slack")
        else:  # a vote towards a quorum: show it on the message
            transaction.on_commit(lambda: message_changed(request_id))
    return decided


# --- who clicked -------------------------------------------------------------


def person_for(client: SlackClient, slack_user_id: str) -> Any:
    """Return the one active person who may decide and whose email is this
    Slack user's (users.lookupByEmail), or None.

    Each email's Slack id is cached for ten minutes, and whom a Slack user
    was is asked first next time, so a known clicker costs no lookup. Two
    people sharing an email never match: the click cannot say which it was.
    """
    codename = "decide_approvalrequest"
    people = list(
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(
            Q(is_superuser=True)
            | Q(user_permissions__codename=codename)
            | Q(groups__permissions__codename=codename)
        )
        .distinct()
        .only("pk", "email")
    )
    known = cache.get(_identity_key("slack-id", slack_user_id))
    people.sort(key=lambda user: user.pk != known)
    for user in people:
        email = user.email.strip().lower()
        if _slack_id(client, email) != slack_user_id:
            continue
        # Slack has one account per email: only a shared email is ambiguous.
        if sum(1 for other in people if other.email.strip().lower() == email) > 1:
            return None
        cache.set(_identity_key("slack-id", slack_user_id), user.pk, IDENTITY_CACHE_S)
        # The whole rule (an app label, a backend) decides, not the query.
        user = get_user_model().objects.get(pk=user.pk)
        return user if may_decide_at_all(user) else None
    return None


def _identity_key(kind: str, value: str) -> str:
    """Return a cache key for an identity in this Slack workspace.

    The workspace is the API and the token: another one (a new app, a test's
    stand-in) starts with nothing remembered.
    """
    workspace = f"{settings.AGENTOS_SLACK_API_URL}\0{settings.AGENTOS_SLACK_BOT_TOKEN}"
    digest = hashlib.sha256(f"{workspace}\0{kind}\0{value}".encode()).hexdigest()
    return f"agentos-slack-{kind}:{digest}"


def _slack_id(client: SlackClient, email: str) -> str:
    key = _identity_key("email", email)
    found = cache.get(key)
    if found is None:
        try:
            found = str(client.call("users.lookupByEmail", email=email)["user"]["id"])
        except SlackError as exc:
            if "users_not_found" not in str(exc):
                raise
            found = ""
        except (KeyError, TypeError):
            found = ""
        cache.set(key, found, IDENTITY_CACHE_S)
    return found


# --- the replay store --------------------------------------------------------


def delivery_seen(signature: str) -> bool:
    """Record a signed delivery; return True when it was seen before."""
    SlackDelivery.objects.filter(at__lt=timezone.now() - timedelta(minutes=10)).delete()
    try:
        with transaction.atomic():
            SlackDelivery.objects.create(signature=signature[:80])
    except IntegrityError:
        return True
    return False


def refusal_before_modal(person: Any, request_id: int) -> str:
    """Return why a person cannot decide a request now ("" if they may)."""
    request = ApprovalRequest.objects.select_related(
        "run", "decided_by", "assigned_group", "assigned_user"
    ).filter(pk=request_id)
    request = request.first()
    if request is None:
        return "this request no longer exists"
    if not request.is_pending:
        who = request.decided_by.get_username() if request.decided_by else "AgentOS"
        return f"already {request.status} by {who}"
    return decide_refusal(person, request, request.run)
