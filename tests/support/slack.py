"""A local stand-in for Slack's Web API: a real HTTP server on a free port.

It answers the methods AgentOS calls the way Slack does, refuses a wrong
bot token (``invalid_auth``), checks the shape of every call against
Slack's documented limits (a bad one is answered ``invalid_arguments`` and
kept in ``problems``), records every call, and can be told to fail the next
calls of a method (a 429 with Retry-After, a 500, an error). It also signs
interaction payloads as Slack would, to post them to AgentOS.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from approvals.slack.signing import sign

BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "input"}
INPUT_ELEMENTS = {"plain_text_input", "number_input", "static_select", "datepicker"}


class FakeSlack:
    """Slack's Web API, as much of it as AgentOS uses."""

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.calls: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.users: dict[str, str] = {}  # email -> Slack user id
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> body
        self.failures: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = defaultdict(
            list
        )
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeSlack:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(
        self, method: str, status: int = 429, *, retry_after: int = 1, error: str = ""
    ) -> None:
        """Make the next call of ``method`` fail like Slack does."""
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        body = {"ok": False, "error": error or ("ratelimited" if status == 429 else "x")}
        self.failures[method].append((status, headers, body))

    def of(self, method: str) -> list[dict[str, Any]]:
        """Return the bodies of the accepted calls of ``method``, in order."""
        with self.lock:
            return [c["body"] for c in self.calls if c["method"] == method and c["ok"]]

    # -- what Slack would do -------------------------------------------------

    def answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        problems = CHECKS.get(method, _unknown)(self, body)
        if problems:
            self.problems.extend(f"{method}: {p}" for p in problems)
            return {"ok": False, "error": "invalid_arguments", "response_metadata": problems}
        if method == "chat.postMessage":
            ts = f"{time.time():.6f}"
            channel = "C" + body["channel"].lstrip("#").upper()[:10]
            self.messages[(channel, ts)] = body
            return {"ok": True, "channel": channel, "ts": ts, "message": body}
        if method == "chat.update":
            self.messages[(body["channel"], body["ts"])] = body
            return {"ok": True, "channel": body["channel"], "ts": body["ts"]}
        if method == "users.lookupByEmail":
            user = self.users.get(body["email"].lower())
            if user is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": user, "profile": {"email": body["email"]}}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{time.time():.6f}"}
        return {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                method = self.path.rsplit("/", 1)[-1]
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.headers.get("Content-Type", "")
                if method == "users.lookupByEmail":
                    ok_kind = kind.startswith("application/x-www-form-urlencoded")
                    body = dict(urllib.parse.parse_qsl(raw.decode()))
                else:
                    ok_kind = kind.startswith("application/json")
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        body = {}
                with fake.lock:
                    failure = fake.failures[method].pop(0) if fake.failures[method] else None
                    if self.headers.get("Authorization") != f"Bearer {fake.token}":
                        status, headers, answer = 200, {}, {"ok": False, "error": "invalid_auth"}
                    elif not ok_kind:
                        fake.problems.append(f"{method}: content type {kind}")
                        status, headers = 200, {}
                        answer = {"ok": False, "error": "invalid_form_data"}
                    elif failure is not None:
                        status, headers, answer = failure
                    else:
                        status, headers, answer = 200, {}, fake.answer(method, body)
                    fake.calls.append(
                        {
                            "method": method,
                            "body": body,
                            "ok": bool(answer.get("ok")),
                            "correlation_id": self.headers.get("X-Correlation-ID", ""),
                        }
                    )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def signed_post(
    client: Any, secret: str, payload: dict[str, Any], *, at: float | None = None
) -> Any:
    """POST an interaction payload to AgentOS signed as Slack signs it."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time() if at is None else at))
    return client.post(
        "/integrations/slack/interactions",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(secret, timestamp, body.encode()),
        },
    )


def click(
    message: dict[str, Any], action_id: str, *, user: str, channel: str = "CAPPROVALS"
) -> dict[str, Any]:
    """Return the block_actions payload of a click on a message's button."""
    button = next(
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    )
    return {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "trigger_id": "trigger-" + user,
        "message": {"ts": "1", "blocks": message["blocks"]},
        "actions": [{"action_id": action_id, "value": button.get("value")}],
    }


# -- shape checks, from Slack's documented limits ------------------------------


def _text(obj: Any, where: str, limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")):
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        return [f"{where}: a text object of type {kinds} is required"]
    text = obj.get("text")
    if not isinstance(text, str) or not text or len(text) > limit:
        return [f"{where}: text must be 1..{limit} characters"]
    return []


def _blocks(blocks: Any, limit: int) -> list[str]:
    if not isinstance(blocks, list) or not 0 < len(blocks) <= limit:
        return [f"blocks: 1..{limit} blocks are required"]
    problems: list[str] = []
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"blocks[{i}]"
        if kind not in BLOCK_TYPES:
            problems.append(f"{where}: unknown block type {kind!r}")
        elif kind == "header":
            problems += _text(block.get("text"), where, 150, ("plain_text",))
        elif kind == "section":
            problems += _text(block.get("text"), where, 3000)
        elif kind == "context":
            for element in block.get("elements", []):
                problems += _text(element, where, 3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 25:
                problems.append(f"{where}: 1..25 elements")
                continue
            for element in elements:
                if element.get("type") != "button":
                    problems.append(f"{where}: only buttons are expected")
                problems += _text(element.get("text"), where, 75, ("plain_text",))
                if len(element.get("action_id", "")) > 255 or len(element.get("value", "")) > 2000:
                    problems.append(f"{where}: action_id or value too long")
                if element.get("style") not in (None, "primary", "danger"):
                    problems.append(f"{where}: bad style")
        elif kind == "input":
            problems += _text(block.get("label"), where, 2000, ("plain_text",))
            element = block.get("element") or {}
            if element.get("type") not in INPUT_ELEMENTS or not element.get("action_id"):
                problems.append(f"{where}: input needs an element of {INPUT_ELEMENTS}")
            if len(block.get("block_id", "")) > 255:
                problems.append(f"{where}: block_id too long")
    return problems


def _post(fake: FakeSlack, body: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(body.get("channel"), str) or not body["channel"]:
        problems.append("channel is required")
    if not isinstance(body.get("text"), str) or not body["text"]:
        problems.append("text (the notification fallback) is required")
    return problems + _blocks(body.get("blocks"), 50)


def _update(fake: FakeSlack, body: dict[str, Any]) -> list[str]:
    if (body.get("channel"), body.get("ts")) not in fake.messages:
        return ["channel and ts must name a posted message (message_not_found)"]
    return _post(fake, body)


def _ephemeral(fake: FakeSlack, body: dict[str, Any]) -> list[str]:
    if not all(isinstance(body.get(k), str) and body[k] for k in ("channel", "user", "text")):
        return ["channel, user and text are required"]
    return []


def _views_open(fake: FakeSlack, body: dict[str, Any]) -> list[str]:
    view = body.get("view")
    if not body.get("trigger_id"):
        return ["trigger_id is required"]
    if not isinstance(view, dict) or view.get("type") != "modal":
        return ["view must be a modal"]
    problems = _text(view.get("title"), "title", 24, ("plain_text",))
    problems += _text(view.get("submit"), "submit", 24, ("plain_text",))
    if len(view.get("private_metadata", "")) > 3000 or len(view.get("callback_id", "")) > 255:
        problems.append("private_metadata or callback_id too long")
    return problems + _blocks(view.get("blocks"), 100)


def _lookup(fake: FakeSlack, body: dict[str, Any]) -> list[str]:
    return [] if body.get("email") else ["email is required"]


def _unknown(fake: FakeSlack, body: dict[str, Any]) -> list[str]:
    return ["unknown method"]


CHECKS = {
    "chat.postMessage": _post,
    "chat.update": _update,
    "chat.postEphemeral": _ephemeral,
    "views.open": _views_open,
    "users.lookupByEmail": _lookup,
}
