"""A worker's stay locks its run again at every step: the fresh row, locked, without the plan."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from workflows.engine.base import Held
from workflows.engine.decide import _plan_facts
from workflows.models import Run
from workflows.services import RunNotFound, run_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db

PLAN = {
    "nodes": [
        {"id": "a", "action": "verify.value_equals", "params": {"value": 1, "expected": 1}},
        {"id": "b", "action": "verify.value_equals", "params": {"value": 2, "expected": 2}},
    ]
}


def test_each_relock_reads_the_row_as_committed_and_keeps_the_frozen_plan() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    held = Held(run_id=run.pk, owner="worker-1")
    with transaction.atomic():
        first = held.lock()
    assert first.plan == PLAN
    # Another writer (a pause, a lease taken over) changes the row between steps.
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.WAITING, lease_owner="worker-2", context={"seen": True}
    )
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        again = held.lock()
        assert (again.status, again.lease_owner) == (RunStatus.WAITING, "worker-2")
        assert again.context == {"seen": True}
        assert again.correlation_id == run.correlation_id
        assert again.created_at == run.created_at
        # The frozen plan is the stay's own object; the row's copy is not read.
        assert again.plan is held.plan
        assert "inputs_schema" in again.get_deferred_fields()
    (select,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert '"workflows_run"."plan"' not in select
    if connection.vendor == "postgresql":  # SQLite serialises writers with IMMEDIATE instead
        assert select.rstrip().endswith("FOR UPDATE")
    # The locked instance saves as before.
    with transaction.atomic():
        locked = held.lock()
        locked.error = "saved"
        locked.save_state()
    assert Run.objects.get(pk=run.pk).error == "saved"


def test_a_relock_of_a_run_that_is_gone_says_so() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    held = Held(run_id=run.pk, owner="worker-1", plan=PLAN)
    held.run_id = run.pk + 10_000
    with transaction.atomic(), pytest.raises(RunNotFound):
        held.lock()


def test_a_plans_facts_are_those_of_the_plan_object_in_hand() -> None:
    gated = {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "Go?"},
            {"id": "a", "action": "verify.value_equals", "params": {"value": 1, "expected": 1}},
        ]
    }
    run = run_create(plan=PLAN, mode="autonomous")
    assert _plan_facts(run).approvals == []
    assert _plan_facts(run).gates_of(run.nodes, 1) == []
    # A plan review replaces the plan (a new object): its facts are worked out anew.
    run.plan = gated
    assert _plan_facts(run).approvals == [0]
    assert _plan_facts(run).gates_of(run.nodes, 1) == [0]
    assert _plan_facts(run).jumps is False


def test_a_straight_lines_gates_in_one_pass_are_those_found_one_position_at_a_time() -> None:
    from workflows.guards import governing_gates

    step = {"action": "verify.value_equals", "params": {"value": 1, "expected": 1}}
    nodes = [
        {"id": "a", **step},
        {"id": "g1", "type": "approval", "title": "Go?"},
        {"id": "b", **step},
        {"id": "c", **step},
        {"id": "ask", "type": "input", "title": "Name?", "fields": {"n": {"type": "string"}}},
        {"id": "d", **step},
        {"id": "g2", "type": "approval", "title": "Again?"},
        {"id": "g3", "type": "approval", "title": "And again?"},
        {"id": "e", **step},
    ]
    run = run_create(plan={"nodes": nodes}, mode="autonomous")
    facts = _plan_facts(run)
    found = [facts.gates_of(run.nodes, p) for p in range(len(nodes) + 1)]
    assert found == [governing_gates(nodes, p) for p in range(len(nodes) + 1)]
    assert found[3] == [1] and found[5] == [] and found[8] == [7]
