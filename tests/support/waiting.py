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
    message: str = "condition",
) -> object:
    """Poll until predicate() is truthy; fail the test with `message` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")
