"""Fixtures for the observability tests: runs paused at gates, in-process."""

from __future__ import annotations

import pytest

from tests.approvals.conftest import gate_plan
from tests.support.runs import advance
from workflows.models import Run
from workflows.services import run_create


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
