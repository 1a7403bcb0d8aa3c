"""Fixtures for the workflows tests."""

from __future__ import annotations

import pytest

from workflows.events import system_event_append
from workflows.models import Run
from workflows.services import run_cancel, run_create

PLAN = {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]}


@pytest.fixture
def logged(operator) -> Run:  # type: ignore[no-untyped-def]
    """A run with four events and a few system events."""
    run = run_create(plan=PLAN, context={"n": 1}, requester=operator)
    for n in range(3):
        system_event_append(type="test.note", data={"n": n})
    run_cancel(run_id=run.pk, actor=operator, reason="first")
    from workflows.forks import run_fork

    run_fork(run_id=run.pk, at_seq=1, actor=operator)
    run.refresh_from_db()
    assert run.last_seq == 3
    return run
