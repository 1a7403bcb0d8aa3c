"""Fixtures shared by the approvals and observability tests: runs paused at a gate."""

from __future__ import annotations

import pytest

from tests.support.runs import advance
from workflows.models import Run
from workflows.services import run_create


def gate_plan(ledger: str, **gate: object) -> dict:
    """A gate guarding one low-risk ledger append that writes the context's `line`."""
    return {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "Append {{ line }}?", **gate},
            {
                "id": "write",
                "action": "test.ledger_append",
                "params": {"ledger": ledger, "line": "{{ line }}"},
            },
        ]
    }


@pytest.fixture
def gated_run(operator, tmp_path):  # type: ignore[no-untyped-def]
    """Return a factory: a bare-plan run paused at a gate, with extra gate options."""

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
