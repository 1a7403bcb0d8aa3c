"""The Slack Web API methods AgentOS calls, and their failures."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import httpx
from django.conf import settings

from agentos_site.correlation import outgoing_headers

logger = logging.getLogger(__name__)

# Errors Slack reports that a later attempt may not meet; the others (a
# missing channel, a revoked token) stay until a person fixes them.
# Methods that read take form fields, not JSON (Slack's "accepted content
# types" for them).
FORM_METHODS = frozenset({"users.lookupByEmail"})
RETRIABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackError(Exception):
    """A Web API call failed; ``retriable`` says whether to try again later."""

    def __init__(self, message: str, *, retriable: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.retriable = retriable
        self.retry_after_s = retry_after_s


class SlackClient:
    """Call Slack's Web API with the bot token (never logged or stored)."""

    def __init__(self, *, token: str, api_url: str, timeout_s: float = 5.0) -> None:
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, *, timeout_s: float = 5.0) -> SlackClient:
        return cls(
            token=settings.AGENTOS_SLACK_BOT_TOKEN,
            api_url=settings.AGENTOS_SLACK_API_URL,
            timeout_s=timeout_s,
        )

    def call(self, method: str, *, correlation_id: str = "", **body: Any) -> dict[str, Any]:
        """POST ``body`` (JSON, or form fields) to ``method``; return Slack's
        answer or raise ``SlackError``.

        The call carries the run's correlation id (X-Correlation-ID), or the
        one bound to this request or task, as webhooks and actions do.
        """
        encoded = {"data": body} if method in FORM_METHODS else {"json": body}
        try:
            response = _http().post(
                f"{self.api_url}/{method}",
                headers={
                    **outgoing_headers(correlation_id or None),
                    "Authorization": f"Bearer {self.token}",
                },
                timeout=self.timeout_s,
                **encoded,
            )
        except httpx.HTTPError as exc:
            raise SlackError(f"{method}: {type(exc).__name__}", retriable=True) from None
        if response.status_code == 429:
            raise SlackError(
                f"{method}: rate limited",
                retriable=True,
                retry_after_s=_seconds(response.headers.get("Retry-After")),
            )
        if response.status_code >= 500:
            raise SlackError(f"{method}: HTTP {response.status_code}", retriable=True)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict):
            raise SlackError(f"{method}: HTTP {response.status_code}", retriable=False)
        if not data.get("ok"):
            error = str(data.get("error") or "unknown_error")[:100]
            raise SlackError(f"{method}: {error}", retriable=error in RETRIABLE_ERRORS)
        return data


_clients: dict[int, httpx.Client] = {}
_clients_lock = threading.Lock()


def _http() -> httpx.Client:
    """Return this process's HTTP client (its connections are kept).

    Making one costs 70-200 ms here (the TLS context), too much for the
    three seconds Slack gives an interaction. One per process: a forked
    worker must not share its parent's sockets. No proxies from the
    environment and no redirects: either could carry the token somewhere
    the setting does not name.
    """
    pid = os.getpid()
    with _clients_lock:
        client = _clients.get(pid)
        if client is None:
            _clients.clear()
            client = _clients[pid] = httpx.Client(follow_redirects=False, trust_env=False)
        return client


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, min(float(value or ""), 3600.0))
    except ValueError:
        return None
