"""How the engine asks for a person without importing the approvals app.

`approvals` installs its handlers at start-up (AppConfig.ready); the engine
calls them inside its own transactions, so a pause and its request commit
together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_pause_handler: Callable[..., Any] | None = None
_close_handler: Callable[..., Any] | None = None
_guard_lookup: Callable[..., dict | None] | None = None
_event_publisher: Callable[..., None] | None = None
_event_flush: Callable[[], object] | None = None


def set_pause_handler(handler: Callable[..., Any]) -> None:
    """Install the function that opens a request when a run pauses."""
    global _pause_handler
    _pause_handler = handler


def set_close_handler(handler: Callable[..., Any]) -> None:
    """Install the function that closes a run's open requests when it ends."""
    global _close_handler
    _close_handler = handler


def set_guard_lookup(lookup: Callable[..., dict | None]) -> None:
    """Install the function that returns the digest a person approved for a step."""
    global _guard_lookup
    _guard_lookup = lookup


def set_event_publisher(
    publisher: Callable[..., None] | None, flush: Callable[[], object] | None = None
) -> None:
    """Install the function that publishes committed events to live clients,
    and the one that waits for what it still holds to be sent."""
    global _event_publisher, _event_flush
    _event_publisher = publisher
    _event_flush = flush


def flush_event_publisher() -> None:
    """Let the publisher send what it still holds (a process about to exit)."""
    if _event_flush is not None:
        _event_flush()


def approved_guard(**kwargs: Any) -> dict | None:
    return _guard_lookup(**kwargs) if _guard_lookup is not None else None


def event_publisher() -> Callable[..., None] | None:
    return _event_publisher


def open_request(**kwargs: Any) -> Any:
    if _pause_handler is None:
        raise RuntimeError("no pause handler: is the approvals app installed?")
    return _pause_handler(**kwargs)


def close_requests(**kwargs: Any) -> None:
    if _close_handler is not None:
        _close_handler(**kwargs)
