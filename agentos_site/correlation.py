"""The correlation id of the work in hand, for logs and outgoing calls.

A web request gets one (the caller's `X-Correlation-ID` when it is a sane
token, else a new one: observability.middleware); a worker advancing a run
takes the run's own `correlation_id`, the one its events carry
(observability.signals). Log lines pick it up (observability.logging), and
so do the calls that leave the process: action processes (ActionContext),
webhooks and Slack messages (`outgoing_headers`).

This is a contextvar read only by logging and outgoing headers, never by the
domain code: services still take their actor and correlation id as
arguments. Django-free, so the engine and the executors may import it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Correlation-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_context: ContextVar[dict[str, object] | None] = ContextVar("agentos_log_context", default=None)


def valid_id(raw: str | None) -> str | None:
    """Return `raw` when it is a sane correlation id (letters, digits, ._:-; <= 64)."""
    return raw if raw and _VALID.match(raw) else None


def new_id() -> str:
    return uuid.uuid4().hex


def current() -> dict[str, object]:
    """Return the fields bound now: correlation_id, run_id, node_path (when known)."""
    return dict(_context.get() or {})


def current_id() -> str:
    return str(current().get("correlation_id") or "")


@contextmanager
def bound(**fields: object) -> Iterator[dict[str, object]]:
    """Bind log fields (correlation_id, run_id, node_path) for the block."""
    merged = {**current(), **{k: v for k, v in fields.items() if v not in (None, "")}}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def bind(**fields: object) -> object:
    """Bind fields until `unbind(token)` (for hooks that have no block)."""
    merged = {**current(), **{k: v for k, v in fields.items() if v not in (None, "")}}
    return _context.set(merged)


def unbind(token: object) -> None:
    _context.reset(token)  # type: ignore[arg-type]


def outgoing_headers(correlation_id: str | None = None) -> dict[str, str]:
    """Return the header an outgoing call (webhook, Slack, HTTP action) carries.

    The Slack client (integrations) adds these to its requests:
    `headers={**outgoing_headers(str(run.correlation_id)), ...}`.
    """
    value = correlation_id or current_id()
    return {HEADER: value} if value else {}
