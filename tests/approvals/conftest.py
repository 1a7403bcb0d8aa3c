"""Fixtures for the approvals tests: a second reviewer, a run paused at an input.

Runs paused at a gate (`gated_run`, `gate_plan`) are in tests/support/gates.py.
"""

from __future__ import annotations

import pytest

from tests.support.fixtures import make_user
from tests.support.runs import advance
from workflows.models import Run
from workflows.services import run_create


@pytest.fixture
def reviewer2(roles):  # type: ignore[no-untyped-def]
    return make_user(roles, "reviewer2", "Reviewers")


@pytest.fixture
def input_run(operator) -> Run:  # type: ignore[no-untyped-def]
    """A bare-plan run paused at an input node asking for two fields."""
    from tests.admin.support import INPUT_PLAN

    run = advance(run_create(plan=INPUT_PLAN, mode="autonomous", requester=operator))
    assert run.status == "waiting", run.error
    return run
