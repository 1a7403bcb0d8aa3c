"""Block Kit for a request's message and for the modals that decide it.

A button carries the request and the digest of what it guards, so a
decision taken on a message that shows parameters which have since changed
is refused like a stale form in the inbox.
"""

from __future__ import annotations

import json
from typing import Any

from approvals.models import ApprovalRequest, RequestKind, RequestStatus, SlackMessage
from approvals.notifications import request_url
from workflows.selectors import redact

CALLBACK_ID = "agentos_decision"
COMMENT_BLOCK = "comment"
FIELD_PREFIX = "field:"
MAX_TEXT = 2900  # a section's text is at most 3000 characters
MAX_FIELDS = 20  # a modal has at most 100 blocks; keep it readable


def button_value(request: ApprovalRequest) -> str:
    """Return what a button carries: the request and its digest."""
    return json.dumps({"request": request.pk, "digest": request.digest})


def message(request: ApprovalRequest, slack: SlackMessage) -> tuple[str, list[dict[str, Any]]]:
    """Return the fallback text and the blocks that show ``request`` now."""
    run = request.run
    workflow = run.workflow.title if run.workflow_id else "a plan"
    requester = run.requester.get_username() if run.requester_id else "nobody"
    if request.assigned_user_id:
        waiting_for = request.assigned_user.get_username()
    else:
        waiting_for = request.assigned_group.name if request.assigned_group_id else "admins"
    facts = [
        f"*Run* #{run.pk} of {_escape(workflow)}",
        f"*Requested by* {_escape(requester)}",
        f"*Waiting for* {_escape(waiting_for)}",
    ]
    if request.due_at and request.is_pending:
        facts.append(f"*Due* {request.due_at:%Y-%m-%d %H:%M} UTC")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(request.title[:150])},
        {"type": "section", "text": _mrkdwn(" · ".join(facts))},
    ]
    if request.description:
        blocks.append({"type": "section", "text": _mrkdwn(_escape(request.description))})
    guards = redact(request.guards or [])
    if guards:
        lines = ["*Approving lets this run:*"]
        for guard in guards:
            params = json.dumps(guard.get("params", {}), indent=1, sort_keys=True, default=str)
            lines.append(
                f"`{_escape(str(guard.get('action', '?')))}` ({guard.get('risk', '?')} risk)"
                f"\n```{_escape(params)}```"
            )
        blocks.append({"type": "section", "text": _mrkdwn(_clip("\n".join(lines)))})
    fields = (request.fields or {}).get("properties", {})
    if fields and request.is_pending:
        names = ", ".join(_escape(str(p.get("title") or n)) for n, p in fields.items())
        blocks.append({"type": "section", "text": _mrkdwn(_clip(f"*Asks for:* {names}"))})
    if request.quorum > 1 and request.is_pending:
        approvers = list(
            request.decisions.filter(decision="approve").values_list("actor_label", flat=True)
        )
        blocks.append(
            {
                "type": "context",
                "elements": [
                    _mrkdwn(
                        f"{len(approvers)} of {request.quorum} approvals"
                        + (f": {_escape(', '.join(approvers))}" if approvers else "")
                    )
                ],
            }
        )
    open_link = {
        "type": "button",
        "action_id": "open",
        "text": _plain("Open in AgentOS"),
        "url": request_url(request.pk),
    }
    if request.is_pending:
        blocks.append({"type": "actions", "elements": [*_decision_buttons(request), open_link]})
        text = f"Waiting for a decision: {request.title}"
    else:
        outcome = _outcome(request, slack)
        blocks.append({"type": "section", "text": _mrkdwn(_clip(outcome))})
        blocks.append({"type": "actions", "elements": [open_link]})
        text = f"{request.title}: {outcome}"
    return text[:300], blocks


def _decision_buttons(request: ApprovalRequest) -> list[dict[str, Any]]:
    value = button_value(request)
    if request.kind == RequestKind.UNKNOWN_OUTCOME:
        return []  # retry / mark done / fail: decided in AgentOS, where the evidence is
    first = (
        {"action_id": "approve", "text": _plain("Approve"), "style": "primary"}
        if request.kind == RequestKind.APPROVAL and not (request.fields or {}).get("properties")
        else {"action_id": "fill", "text": _plain("Fill in and approve"), "style": "primary"}
    )
    reject = {"action_id": "reject", "text": _plain("Reject"), "style": "danger"}
    return [
        {"type": "button", "value": value, **first},
        {"type": "button", "value": value, **reject},
    ]


def _outcome(request: ApprovalRequest, slack: SlackMessage) -> str:
    who = request.decided_by.get_username() if request.decided_by_id else "AgentOS"
    # A person decided in Slack or in AgentOS (inbox, admin, API); the
    # system (a timeout) only in AgentOS.
    where = f" in {slack.decided_via or 'AgentOS'}" if request.decided_by_id else ""
    when = f"{request.decided_at:%Y-%m-%d %H:%M} UTC" if request.decided_at else ""
    if request.status == RequestStatus.APPROVED:
        return f":white_check_mark: *Approved* by {_escape(who)}{where} at {when}"
    if request.status == RequestStatus.REJECTED:
        reason = f": {_escape(request.comment)}" if request.comment else ""
        return f":x: *Rejected* by {_escape(who)}{where} at {when}{reason}"
    reason = f": {_escape(request.comment)}" if request.comment else ""
    return f":no_entry_sign: *Closed* at {when}{reason}"


def modal(request: ApprovalRequest, decision: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Return the modal that asks for a reason (reject) or the values (fill)."""
    blocks: list[dict[str, Any]] = []
    if decision == "approve":
        schema = request.fields or {}
        required = set(schema.get("required", []))
        for name, prop in list(schema.get("properties", {}).items())[:MAX_FIELDS]:
            blocks.append(_input_block(name, prop, name in required, request.values.get(name)))
    blocks.append(
        {
            "type": "input",
            "block_id": COMMENT_BLOCK,
            "optional": decision != "reject",
            "label": _plain("Reason" if decision == "reject" else "Comment"),
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "multiline": True,
                "max_length": 1000,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps(metadata),
        "title": _plain("Reject" if decision == "reject" else "Approve"),
        "submit": _plain("Reject" if decision == "reject" else "Approve"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": _mrkdwn(_clip(f"*{_escape(request.title)}*"))},
            *blocks,
        ],
    }


def _input_block(name: str, prop: dict[str, Any], required: bool, current: Any) -> dict[str, Any]:
    """Return the input block for one JSON Schema property."""
    kind = prop.get("type")
    element: dict[str, Any] = {"action_id": "value"}
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        options = [
            {"text": _plain(str(v)[:75]), "value": json.dumps(v)} for v in prop["enum"][:100]
        ]
        element.update(type="static_select", options=options)
        if current in prop["enum"]:
            element["initial_option"] = options[prop["enum"].index(current)]
    elif kind in ("integer", "number"):
        element.update(type="number_input", is_decimal_allowed=kind == "number")
        if isinstance(current, (int, float)) and not isinstance(current, bool):
            element["initial_value"] = str(current)
    elif kind == "string" and prop.get("format") == "date":
        element["type"] = "datepicker"
        if isinstance(current, str) and current:
            element["initial_date"] = current
    elif kind == "boolean":
        options = [
            {"text": _plain("Yes"), "value": "true"},
            {"text": _plain("No"), "value": "false"},
        ]
        element.update(type="static_select", options=options)
        if isinstance(current, bool):
            element["initial_option"] = options[0 if current else 1]
    else:
        element["type"] = "plain_text_input"
        if isinstance(prop.get("maxLength"), int):
            element["max_length"] = min(prop["maxLength"], 3000)
        if isinstance(current, str) and current:
            element["initial_value"] = current[:3000]
    block: dict[str, Any] = {
        "type": "input",
        "block_id": FIELD_PREFIX + name,
        "optional": not required,
        "label": _plain(str(prop.get("title") or name)[:2000]),
        "element": element,
    }
    if prop.get("description"):
        block["hint"] = _plain(str(prop["description"])[:2000])
    return block


def submitted_values(request: ApprovalRequest, state: dict[str, Any]) -> tuple[dict, str]:
    """Return (values, comment) from a modal's ``view.state.values``.

    Values are typed from the request's schema; one that does not convert
    is passed on as typed, for the service's validation to name the field.
    """
    values: dict[str, Any] = {}
    properties = (request.fields or {}).get("properties", {})
    for block_id, actions in state.items():
        element = actions.get("value") if isinstance(actions, dict) else None
        element = element if isinstance(element, dict) else {}
        if block_id == COMMENT_BLOCK:
            continue
        if (
            not block_id.startswith(FIELD_PREFIX)
            or block_id[len(FIELD_PREFIX) :] not in properties
        ):
            continue
        name = block_id[len(FIELD_PREFIX) :]
        raw = _element_value(element)
        if raw is None or raw == "":
            continue
        values[name] = _typed(raw, properties[name])
    block = state.get(COMMENT_BLOCK)
    element = block.get("value") if isinstance(block, dict) else None
    comment = element.get("value") if isinstance(element, dict) else None
    return values, str(comment or "")


def _element_value(element: dict[str, Any]) -> Any:
    kind = element.get("type")
    if kind == "static_select":
        option = element.get("selected_option")
        if not isinstance(option, dict):
            return None
        try:
            return json.loads(option.get("value", "null"))
        except (ValueError, TypeError):
            return option.get("value")
    if kind == "datepicker":
        return element.get("selected_date")
    return element.get("value")


def _typed(raw: Any, prop: dict[str, Any]) -> Any:
    kind = prop.get("type")
    if not isinstance(raw, str):
        return raw
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text or " ", "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text or " "}


def _escape(text: str) -> str:
    # Slack's three control characters; nothing a request says can mention
    # @channel or forge a link.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
