"""Fixtures for the admin tests: workflows and paused runs."""

from __future__ import annotations

import pytest

from tests.admin.support import GATE_SPEC, INPUT_PLAN
from tests.support.runs import advance
from workflows.models import Run, Workflow
from workflows.plans import parse_spec_text
from workflows.services import run_create, workflow_create


@pytest.fixture
def gated_workflow(operator) -> Workflow:  # type: ignore[no-untyped-def]
    return workflow_create(raw_spec=parse_spec_text(GATE_SPEC), source=GATE_SPEC, actor=operator)


@pytest.fixture
def waiting_run(gated_workflow, operator) -> Run:  # type: ignore[no-untyped-def]
    """A run of the gated workflow, paused at its approval gate."""
    run = run_create(
        workflow=gated_workflow, context={"employee_name": "Ada Lovelace"}, requester=operator
    )
    run = advance(run)
    assert run.status == "waiting", run.error
    return run


@pytest.fixture
def input_run(operator) -> Run:  # type: ignore[no-untyped-def]
    """A bare-plan run paused at an input node asking for two fields."""
    run = advance(run_create(plan=INPUT_PLAN, mode="autonomous", requester=operator))
    assert run.status == "waiting", run.error
    return run
