"""One way to wait in a test: poll a condition, fail with a message on timeout."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float = 30.0,
    every: float = 0.05,
    message: str | Callable[[], object] = "condition",
) -> object:
    """Poll until predicate() is truthy; fail the test with `message` on timeout.

    A generous deadline, not a speed assertion: it only bounds how long a
    failing test hangs. A callable message is called then, to show the state
    that was waited on.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    value = predicate()  # once more: the deadline may have passed mid-sleep
    if value:
        return value
    shown = message() if callable(message) else message
    pytest.fail(f"timed out after {timeout}s waiting for {shown}")
