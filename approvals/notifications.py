"""Tell people a request is waiting: email to those who may decide, a signed webhook.

Called after the transaction that opened or decided a request commits. The
email links to the request page, which never decides anything on GET. The
webhook (one per workflow, optional) is delivered by a worker task, signed
with HMAC-SHA256 over the exact body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import urllib.error
import urllib.request
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from workflows.events import canonical_json

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-AgentOS-Signature"


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
    """Email the people who may decide a new (or reassigned) request; fire the webhook."""
    from approvals.models import ApprovalRequest

    request = (ApprovalRequest.objects.select_related("run__workflow", "assigned_group",
                                                      "assigned_user")
               .filter(pk=request_id).first())
    if request is None or not request.is_pending:
        return
    to = [u.email for u in deciders(request) if u.email]
    if to:
        context = {"request": request, "url": request_url(request.pk), "resend": resend}
        try:
            send_mail(
                subject=f"[AgentOS] Waiting for you: {request.title}"[:200],
                message=render_to_string("approvals/email/request_opened.txt", context),
                from_email=settings.AGENTOS_EMAIL_FROM, recipient_list=to,
            )
        except Exception:  # a mail server being down must not stop the run
            logger.exception("request %s: could not send the notification email", request_id)
    if not resend:
        _webhook(request, "approval.requested")


def request_decided(request_id: int) -> None:
    """Fire the workflow's webhook for a decided request."""
    from approvals.models import ApprovalRequest

    request = (ApprovalRequest.objects.select_related("run__workflow", "decided_by")
               .filter(pk=request_id).first())
    if request is not None:
        _webhook(request, "approval.decided")


def webhook_payload(request: Any, event: str) -> dict:
    """Return what the webhook says about a request (no values, no context)."""
    return {
        "event": event, "delivery": str(uuid.uuid4()),
        "request": {
            "id": request.pk, "run": request.run_id, "node": request.node_id,
            "kind": request.kind, "title": request.title, "status": request.status,
            "digest": request.digest,
            "decided_by": request.decided_by.get_username() if request.decided_by else None,
            "url": request_url(request.pk),
        },
        "workflow": request.run.workflow.slug if request.run.workflow_id else None,
    }


def _webhook(request: Any, event: str) -> None:
    from approvals.models import WorkflowWebhook

    if not request.run.workflow_id:
        return
    hook = WorkflowWebhook.objects.filter(workflow_id=request.run.workflow_id,
                                          active=True).first()
    if hook is None:
        return
    from django_q.tasks import async_task

    async_task("approvals.tasks.webhook_deliver", hook.pk, webhook_payload(request, event),
               task_name=f"webhook-{request.pk}-{event}", group="webhooks", save=False)


def sign(secret: str, body: bytes) -> str:
    """Return the signature header value for a body: sha256=<hex HMAC>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_deliver(hook_id: int, payload: dict, *, timeout_s: float = 5.0) -> int:
    """POST a payload to a workflow's webhook, signed; return the HTTP status."""
    from approvals.models import WorkflowWebhook

    hook = WorkflowWebhook.objects.get(pk=hook_id)
    secret = settings.AGENTOS_SECRETS.get(hook.secret_name, "")
    if not secret:
        logger.warning("webhook %s: secret %s is not set; not sent", hook_id, hook.secret_name)
        return 0
    body = canonical_json(payload).encode()
    http_request = urllib.request.Request(hook.url, data=body, method="POST", headers={
        "Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
        "X-AgentOS-Event": payload.get("event", ""), "User-Agent": "AgentOS-webhook",
    })
    try:
        with urllib.request.urlopen(http_request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        logger.warning("webhook %s: %s answered %s", hook_id, hook.url, exc.code)
        return int(exc.code)
