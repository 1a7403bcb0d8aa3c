"""Fixtures for the observability tests: runs paused at gates, in-process."""

from __future__ import annotations

import pytest

from tests.approvals.conftest import gate_plan
from tests.support.runs import advance
from workflows.models import Run
from workflows.services import run_create


@pytest.fixture(autouse=True)
def fresh_decision_times():  # type: ignore[no-untyped-def]
    """The dashboard keeps its decision times for a minute: not from test to test."""
    from django.core.cache import cache

    from observability.reports import DECISION_TIMES_KEY

    cache.delete(DECISION_TIMES_KEY)
    yield
    cache.delete(DECISION_TIMES_KEY)


@pytest.fixture
def gated(operator, tmp_path):  # type: ignore[no-untyped-def]
    """Return a factory: a bare-plan run paused at a gate with these options."""

    def make(**gate: object) -> Run:
        run = run_create(
            plan=gate_plan(str(tmp_path / "ledger"), **gate),
            mode="autonomous",
            context={"line": "hello"},
            requester=operator,
        )
        run = advance(run)
        assert run.status == "waiting", run.error
        return run

    return make
