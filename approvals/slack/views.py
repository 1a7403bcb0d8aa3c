"""POST /integrations/slack/interactions: buttons and modals from Slack.

Slack signs every request (v0, ``X-Slack-Signature``); an unsigned, stale
(over five minutes) or replayed one is refused with 401 before anything is
read. Decisions go through ``approvals.services.approval_decide`` with the
person the Slack user maps to, so the inbox's rules all apply.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from approvals import slack
from approvals.models import ApprovalRequest
from approvals.services import AlreadyDecided, DecisionInvalid, DecisionRefused
from approvals.slack import blocks, services, signing
from approvals.slack.client import SlackClient, SlackError

logger = logging.getLogger(__name__)
# Slack waits three seconds for an answer; its calls made while answering
# (who clicked, a modal, an ephemeral note) must leave room for the rest.
CALL_TIMEOUT_S = 2.0
MAX_ID = 2**63  # a larger id is no row, and no database takes it
UNKNOWN_PERSON = (
    "AgentOS does not know you: no person who may decide requests has the email of your "
    "Slack account. Decide in AgentOS, or ask an admin to set your email there."
)


@csrf_exempt
@require_POST
def interactions(request: HttpRequest) -> HttpResponse:
    """Verify Slack's signature, then handle a button click or a modal."""
    if not slack.enabled():
        raise Http404("Slack is not configured")
    signature = request.headers.get("X-Slack-Signature", "")
    why = signing.verify(
        settings.AGENTOS_SLACK_SIGNING_SECRET,
        request.headers.get("X-Slack-Request-Timestamp", ""),
        signature,
        request.body,
    )
    if why:
        return JsonResponse({"detail": why}, status=401)
    if services.delivery_seen(signature):
        return JsonResponse({"detail": "this delivery was already received"}, status=401)
    try:
        payload = json.loads(request.POST.get("payload", ""))
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return _bad("payload", "must be the JSON Slack sends")
    kind = payload.get("type")
    if kind == "block_actions":
        return _block_actions(payload)
    if kind == "view_submission":
        return _view_submission(payload)
    return HttpResponse(status=200)  # other interactions are not ours to answer


def _block_actions(payload: dict[str, Any]) -> HttpResponse:
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else {}
    action_id = action.get("action_id") if isinstance(action, dict) else None
    if action_id not in ("approve", "reject", "fill"):
        return HttpResponse(status=200)  # e.g. the "Open in AgentOS" link
    ref = _reference(action.get("value"))
    user_id = _str(payload.get("user"), "id")
    channel = _str(payload.get("channel"), "id")
    if ref is None or not user_id:
        return _bad("actions.value", "must carry the request and its digest")
    request_id, digest = ref
    client = SlackClient.from_settings(timeout_s=CALL_TIMEOUT_S)
    person, problem = _person(client, user_id)
    if person is None:
        _ephemeral(client, channel, user_id, problem)
        return HttpResponse(status=200)
    if action_id == "approve":
        problems = _decide(person, user_id, request_id, "approve", digest, {}, "")
        if problems:
            _ephemeral(client, channel, user_id, " ".join(problems.values()))
        return HttpResponse(status=200)
    refusal = services.refusal_before_modal(person, request_id)
    request = ApprovalRequest.objects.filter(pk=request_id).first()
    if not refusal and request is not None and request.digest != digest:
        refusal = "what this request guards changed since this message; open it again"
    if refusal or request is None:
        _ephemeral(client, channel, user_id, _sentence(refusal))
        return HttpResponse(status=200)
    decision = "reject" if action_id == "reject" else "approve"
    metadata = {"request": request_id, "digest": digest, "decision": decision, "channel": channel}
    try:
        client.call(
            "views.open",
            trigger_id=str(payload.get("trigger_id", "")),
            view=blocks.modal(request, decision, metadata),
        )
    except SlackError as exc:
        logger.warning("request %s: could not open the Slack form: %s", request_id, exc)
        _ephemeral(client, channel, user_id, "Slack could not open the form; decide in AgentOS.")
    return HttpResponse(status=200)


def _view_submission(payload: dict[str, Any]) -> HttpResponse:
    view = _dict(payload.get("view"))
    if view.get("callback_id") != blocks.CALLBACK_ID:
        return HttpResponse(status=200)
    try:
        meta = json.loads(view.get("private_metadata") or "")
        request_id, digest, decision = int(meta["request"]), str(meta["digest"]), meta["decision"]
    except (ValueError, KeyError, TypeError, OverflowError):
        request_id = 0
    if not 0 < request_id < MAX_ID:
        return _bad("view.private_metadata", "is not a form AgentOS opened")
    user_id = _str(payload.get("user"), "id")
    request = ApprovalRequest.objects.filter(pk=request_id).first()
    if request is None or decision not in ("approve", "reject") or not user_id:
        return _form_errors({blocks.COMMENT_BLOCK: "This request no longer exists."})
    client = SlackClient.from_settings(timeout_s=CALL_TIMEOUT_S)
    person, problem = _person(client, user_id)
    if person is None:
        return _form_errors({blocks.COMMENT_BLOCK: problem})
    state = _dict(_dict(view.get("state")).get("values"))
    values, comment = blocks.submitted_values(request, state)
    if decision == "reject":
        values = {}
    errors = _decide(person, user_id, request_id, decision, digest, values, comment)
    if errors:
        fields = _fields(request)
        return _form_errors(
            {
                blocks.FIELD_PREFIX + name if name in fields else blocks.COMMENT_BLOCK: message
                for name, message in errors.items()
            }
        )
    return HttpResponse(status=200)  # closes the modal


def _decide(
    person: Any,
    slack_user: str,
    request_id: int,
    decision: str,
    digest: str,
    values: dict,
    comment: str,
) -> dict[str, str]:
    """Decide through the service; return field -> problem ("" for a note)."""
    try:
        services.slack_decide(
            request_id=request_id,
            person=person,
            slack_user=slack_user,
            decision=decision,
            digest=digest,
            values=values,
            comment=comment,
        )
    except AlreadyDecided as exc:
        return {"": f"This request was already decided by {exc.decided_by}."}
    except DecisionRefused as exc:
        return {"": _sentence(f"you may not decide this request: {exc}")}
    except DecisionInvalid as exc:
        if set(exc.errors) <= {"digest", "decision", "request"}:
            return {"": _sentence(" ".join(exc.errors.values()))}
        return dict(exc.errors)
    return {}


def _person(client: SlackClient, user_id: str) -> tuple[Any, str]:
    try:
        person = services.person_for(client, user_id)
    except SlackError as exc:
        logger.warning("Slack user %s: could not look the person up: %s", user_id, exc)
        return None, "Slack could not tell AgentOS who you are right now; decide in AgentOS."
    return (person, "") if person is not None else (None, UNKNOWN_PERSON)


def _ephemeral(client: SlackClient, channel: str, user_id: str, text: str) -> None:
    """Tell only the clicker; a failure here is logged, never raised."""
    if not channel:
        return
    try:
        client.call("chat.postEphemeral", channel=channel, user=user_id, text=text[:3000])
    except SlackError as exc:
        logger.warning("Slack user %s: could not send a note: %s", user_id, exc)


def _reference(value: Any) -> tuple[int, str] | None:
    try:
        data = json.loads(value)
        request_id, digest = int(data["request"]), str(data["digest"])
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return (request_id, digest) if 0 < request_id < MAX_ID else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _fields(request: ApprovalRequest) -> dict:
    return (request.fields or {}).get("properties", {})


def _str(obj: Any, key: str) -> str:
    return str(obj.get(key) or "") if isinstance(obj, dict) else ""


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _form_errors(errors: dict[str, str]) -> JsonResponse:
    return JsonResponse({"response_action": "errors", "errors": errors})


def _bad(field: str, message: str) -> JsonResponse:
    return JsonResponse(
        {"detail": "the request is not valid", "errors": [{"field": field, "message": message}]},
        status=400,
    )
