"""Slack's v0 request signature: HMAC-SHA256 of "v0:<timestamp>:<body>"."""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_S = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the ``X-Slack-Signature`` Slack sends for this body and time."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, signature: str, body: bytes, *, now: float | None = None):
    """Return "" when the request is Slack's and recent, else why it is not."""
    if not secret:
        return "AGENTOS_SLACK_SIGNING_SECRET is not set"
    try:
        sent = int(timestamp)
    except ValueError:
        return "bad or missing X-Slack-Request-Timestamp"
    if abs((time.time() if now is None else now) - sent) > TOLERANCE_S:
        return "X-Slack-Request-Timestamp is more than 5 minutes away"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature or ""):
        return "bad X-Slack-Signature"
    return ""
