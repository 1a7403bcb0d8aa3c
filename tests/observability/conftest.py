"""Fixtures of the observability tests (shared gated runs: tests/support/gates.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_decision_times():  # type: ignore[no-untyped-def]
    """The dashboard keeps its decision times for a minute: not from test to test."""
    from django.core.cache import cache

    from observability.reports import DECISION_TIMES_KEY

    cache.delete(DECISION_TIMES_KEY)
    yield
    cache.delete(DECISION_TIMES_KEY)
