"""Tell people a request is waiting: email to those who may decide, a signed webhook.

Called after the transaction that opened or decided a request commits. The
email links to the request page, which never decides anything on GET. The
webhook (one per workflow, optional) is delivered by a worker task:

- only to an origin on AGENTOS_WEBHOOK_ALLOWED_HOSTS whose addresses pass
  the same checks as HTTP actions (``executors.actions.hosts``), to the
  address that was checked, never following a redirect;
- signed with a key from its own namespace (secrets named ``WEBHOOK_...``),
  so a webhook can never be pointed at a portal password or an API token;
- with ``X-AgentOS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
  "<t>." + body>``: receivers check it with ``verify_signature`` and refuse
  a timestamp older than AGENTOS_WEBHOOK_TOLERANCE_S (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from agentos_common.canonical import canonical_json
from approvals.exceptions import WebhookRefused

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-AgentOS-Signature"
WEBHOOK_SECRET_NAME = re.compile(r"^WEBHOOK_[A-Z0-9_]{1,56}$")
URL_SETTING = "AGENTOS_WEBHOOK_ALLOWED_HOSTS"


def request_url(request_id: int) -> str:
    """Return the absolute link to a request's page in the inbox."""
    return settings.AGENTOS_BASE_URL.rstrip("/") + reverse("inbox:request", args=[request_id])


def deciders(request: Any) -> list[Any]:
    """Return the active people who may decide the request (not its requester)."""
    from approvals.permissions import decide_refusal

    users = get_user_model().objects.filter(is_active=True)
    if request.assigned_user_id:
        users = users.filter(pk=request.assigned_user_id)
    elif request.assigned_group_id:
        users = users.filter(groups=request.assigned_group_id)
    else:
        users = users.filter(is_superuser=True)
    return [u for u in users.distinct() if not decide_refusal(u, request, request.run)]


def request_opened(request_id: int, *, resend: bool = False) -> None:
    """Email the people who may decide a new (or reassigned) request; fire the
    webhook; post (or update) its Slack message."""
    from approvals.models import ApprovalRequest
    from approvals.slack.services import message_changed

    message_changed(request_id, post=not resend)

    request = (
        ApprovalRequest.objects.select_related("run__workflow", "assigned_group", "assigned_user")
        .filter(pk=request_id)
        .first()
    )
    if request is None or not request.is_pending:
        return
    to = [u.email for u in deciders(request) if u.email]
    if to:
        context = {"request": request, "url": request_url(request.pk), "resend": resend}
        try:
            send_mail(
                subject=f"[AgentOS] Waiting for you: {request.title}"[:200],
                message=render_to_string("approvals/email/request_opened.txt", context),
                from_email=settings.AGENTOS_EMAIL_FROM,
                recipient_list=to,
            )
        except Exception:  # a mail server being down must not stop the run
            logger.exception("request %s: could not send the notification email", request_id)
    if not resend:
        _webhook(request, "approval.requested")


def request_decided(request_id: int) -> None:
    """Fire the workflow's webhook for a decided request; update its Slack message."""
    from approvals.models import ApprovalRequest, WorkflowWebhook
    from approvals.slack.services import message_changed

    message_changed(request_id)
    # Most workflows have no webhook: asked first, in one small query, rather
    # than loading the request with its run (plan, context) for nothing. It
    # runs in the web process after the decision's commit, beside the worker
    # starting the run's next step on a machine with few cores.
    if not WorkflowWebhook.objects.filter(
        active=True, workflow__runs__approval_requests__pk=request_id
    ).exists():
        return
    request = (
        ApprovalRequest.objects.select_related("run__workflow", "decided_by")
        .filter(pk=request_id)
        .first()
    )
    if request is not None:
        _webhook(request, "approval.decided")


def webhook_payload(request: Any, event: str) -> dict:
    """Return what the webhook says about a request (no values, no context)."""
    return {
        "event": event,
        "delivery": str(uuid.uuid4()),
        "request": {
            "id": request.pk,
            "run": request.run_id,
            "node": request.node_id,
            "kind": request.kind,
            "title": request.title,
            "status": request.status,
            "digest": request.digest,
            "decided_by": request.decided_by.get_username() if request.decided_by else None,
            "url": request_url(request.pk),
        },
        "workflow": request.run.workflow.slug if request.run.workflow_id else None,
        "correlation_id": str(request.run.correlation_id),
    }


def _webhook(request: Any, event: str) -> None:
    from approvals.models import WorkflowWebhook

    if not request.run.workflow_id:
        return
    hook = WorkflowWebhook.objects.filter(workflow_id=request.run.workflow_id, active=True).first()
    if hook is None:
        return
    from django_q.tasks import async_task

    async_task(
        "approvals.tasks.webhook_deliver",
        hook.pk,
        webhook_payload(request, event),
        task_name=f"webhook-{request.pk}-{event}",
        group="webhooks",
        save=False,
    )


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the signature header value: t=<timestamp>,v1=<hex HMAC of "t." + body>."""
    signed = str(timestamp).encode() + b"." + body
    return f"t={timestamp},v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: float | None = None,
) -> bool:
    """Return whether a delivery's signature header is valid and recent.

    What a receiver does (in any language): split the header at commas into
    ``t`` and ``v1``, recompute the HMAC over ``t.body``, compare in
    constant time, and refuse a ``t`` further than the tolerance from now.
    """
    tolerance = settings.AGENTOS_WEBHOOK_TOLERANCE_S if tolerance_s is None else tolerance_s
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def webhook_problems(url: str, secret_name: str) -> dict[str, str]:
    """Return field -> message for a webhook that breaks policy (no lookup)."""
    from executors.actions.hosts import check_url
    from executors.base import ActionFailed

    problems = {}
    try:
        check_url(url, settings.AGENTOS_WEBHOOK_ALLOWED_HOSTS, setting=URL_SETTING)
    except ActionFailed as exc:
        problems["url"] = str(exc)
    if not WEBHOOK_SECRET_NAME.match(secret_name or ""):
        problems["secret_name"] = (
            "webhooks are signed only with secrets named WEBHOOK_... "
            "(configured as AGENTOS_SECRET_WEBHOOK_...)"
        )
    return problems


def _target(url: str) -> Any:
    """Return the checked, resolved target of a webhook URL, or raise WebhookRefused."""
    from executors.actions.hosts import check_url, resolve
    from executors.base import ActionFailed

    try:
        origin = check_url(url, settings.AGENTOS_WEBHOOK_ALLOWED_HOSTS, setting=URL_SETTING)
        return resolve(origin, settings.AGENTOS_WEBHOOK_ALLOWED_HOSTS, setting=URL_SETTING)
    except ActionFailed as exc:
        raise WebhookRefused(str(exc)) from None


def webhook_deliver(hook_id: int, payload: dict, *, timeout_s: float = 5.0) -> int:
    """POST a payload to a workflow's webhook, signed; return the HTTP status.

    0 means nothing was sent: the key is unset or outside its namespace, or
    the URL is not allowed.
    """
    from agentos_site.correlation import outgoing_headers
    from approvals.models import WorkflowWebhook
    from executors.actions.hosts import target_request

    hook = WorkflowWebhook.objects.get(pk=hook_id)
    problems = webhook_problems(hook.url, hook.secret_name)
    if "secret_name" in problems:
        logger.warning("webhook %s: %s; not sent", hook_id, problems["secret_name"])
        return 0
    secret = settings.AGENTOS_SECRETS.get(hook.secret_name, "")
    if not secret:
        logger.warning("webhook %s: secret %s is not set; not sent", hook_id, hook.secret_name)
        return 0
    try:
        target = _target(hook.url)
    except WebhookRefused as exc:
        logger.warning("webhook %s: %s; not sent", hook_id, exc)
        return 0
    body = canonical_json(payload).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        "X-AgentOS-Event": payload.get("event", ""),
        "User-Agent": "AgentOS-webhook",
        # The run's correlation id: the receiver's logs join ours on it.
        **outgoing_headers(payload.get("correlation_id")),
    }
    # No redirects and no proxies from the environment: either could carry
    # the signed body somewhere the allow-list does not name.
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for index, address in enumerate(target.addresses):
            url, host_header, extensions = target_request(hook.url, target, address)
            try:
                response = client.post(
                    url,
                    content=body,
                    headers={**headers, **host_header},
                    timeout=timeout_s,
                    extensions=extensions,
                )
            except httpx.ConnectError:
                if index == len(target.addresses) - 1:
                    raise
                continue
            if response.status_code >= 300:
                logger.warning(
                    "webhook %s: %s answered %s", hook_id, hook.url, response.status_code
                )
            return int(response.status_code)
    return 0
