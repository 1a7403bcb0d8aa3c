"""A step's hot writes, written once (workflows.sql): the ORM's rows, its checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workflows import sql
from workflows.engine import run_advance
from workflows.engine.base import append_event
from workflows.events import verify_all
from workflows.models import Event, Run, Step
from workflows.services import lock_run, run_create
from workflows.states import RunStatus, StepStatus

pytestmark = pytest.mark.django_db

PLAN = {
    "nodes": [
        {"id": f"s{i}", "action": "verify.value_equals", "params": {"value": i, "expected": i}}
        for i in range(3)
    ]
}


def _step(run: Run, attempt: int) -> Step:
    return Step(
        run=run,
        node_id="a",
        node_path="a",
        position=0,
        attempt=attempt,
        action="verify.value_equals",
        params={"nested": [1, "two", {"three": None}], "é": "ü"},
        status=StepStatus.RUNNING,
        idempotency_key=f"k{attempt}",
        worker="w",
        started_at=timezone.now(),
    )


def _row(step: Step) -> dict[str, Any]:
    row = dict(Step.objects.filter(pk=step.pk).values().get())
    del row["id"], row["attempt"], row["idempotency_key"], row["started_at"]
    return row


def test_an_insert_writes_the_row_the_orm_writes_and_sets_the_key() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    by_orm, written = _step(run, 1), _step(run, 2)
    by_orm.save()
    with transaction.atomic():
        sql.insert([written])
    assert written.pk is not None and written.pk != by_orm.pk
    assert not written._state.adding and written._state.db == "default"
    assert _row(written) == _row(by_orm)
    assert Step.objects.get(pk=written.pk).started_at == written.started_at


def test_an_update_is_the_querysets_and_counts_only_the_rows_it_matched() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    step = _step(run, 1)
    step.save()
    done = {"status": StepStatus.SUCCEEDED, "finished_at": timezone.now(), "output": {"x": [1]}}
    where = {"id": step.pk, "status": StepStatus.RUNNING, "worker": "someone else"}
    assert sql.update(Step, done, where) == 0
    assert Step.objects.get(pk=step.pk).status == StepStatus.RUNNING
    assert sql.update(Step, done, {**where, "worker": "w"}) == 1
    step.refresh_from_db()
    assert (step.status, step.output, step.finished_at) == (
        StepStatus.SUCCEEDED,
        {"x": [1]},
        done["finished_at"],
    )


def test_a_runs_state_save_moves_updated_at_and_refuses_a_run_that_is_gone() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    run.updated_at = before = run.updated_at - timedelta(hours=1)
    run.context = {"saved": True}
    with transaction.atomic():
        run.save_state()
    fresh = Run.objects.get(pk=run.pk)
    assert fresh.context == {"saved": True}
    assert fresh.updated_at > before and fresh.updated_at == run.updated_at
    run.pk = run.pk + 1000  # a run that is not there (runs are never deleted)
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        with transaction.atomic():
            run.save_state()


def test_a_step_is_written_once_without_the_orm_and_its_chain_verifies() -> None:
    compiled: list[str] = []
    from django.db.models.sql import compiler

    original = compiler.SQLInsertCompiler.as_sql

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(self.query.model.__name__)
        return original(self, *args, **kwargs)

    run = run_create(plan=PLAN, mode="autonomous")
    compiler.SQLInsertCompiler.as_sql = counting  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            run_advance(run_id=run.pk, owner="w1")
    finally:
        compiler.SQLInsertCompiler.as_sql = original  # type: ignore[method-assign]
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    # Neither the steps nor their events were compiled by the ORM.
    assert "Step" not in compiled and "Event" not in compiled
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3 + 4  # three steps; four commits' events
    assert Event.objects.filter(run=run).count() == run.last_seq
    assert verify_all() == []


def test_a_receiver_of_a_steps_save_still_hears_it() -> None:
    heard: list[tuple[str, bool]] = []

    def receiver(sender: type[Step], instance: Step, created: bool, **kwargs: Any) -> None:
        heard.append((instance.node_id, created))

    run = run_create(plan=PLAN, mode="autonomous")
    post_save.connect(receiver, sender=Step, dispatch_uid="test-engine-sql")
    try:
        assert not sql.usable(Step, "default")
        run_advance(run_id=run.pk, owner="w1")
    finally:
        post_save.disconnect(sender=Step, dispatch_uid="test-engine-sql")
    assert heard == [("s0", True), ("s1", True), ("s2", True)]
    assert sql.usable(Step, "default")


def test_a_runs_staged_events_go_with_its_row_in_one_round_trip_on_postgresql() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    with transaction.atomic():
        locked = lock_run(run.pk)
        append_event(locked, "run.noted", {"n": 1})
        append_event(locked, "run.noted", {"n": 2})
        with CaptureQueriesContext(connection) as queries:
            locked.save_state()
    assert len(queries.captured_queries) == (1 if connection.vendor == "postgresql" else 2)
    events = list(Event.objects.filter(run=run, type="run.noted").order_by("seq"))
    assert [e.data["n"] for e in events] == [1, 2]
    assert Run.objects.get(pk=run.pk).last_seq == events[-1].seq == locked.last_seq
    assert verify_all() == []


def test_a_save_that_finds_no_run_keeps_none_of_its_staged_events() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        with transaction.atomic():
            ghost = lock_run(run.pk)
            ghost.pk = run.pk + 1000  # a run that is not there
            append_event(ghost, "run.noted", {"n": 1})
            ghost.save_state()
    assert not Event.objects.filter(type="run.noted").exists()


def test_with_server_side_binding_the_events_and_the_row_go_as_two_queries(monkeypatch) -> None:
    """psycopg prepares each query on the server then, and refuses two statements in one."""
    options = {**connection.settings_dict.get("OPTIONS", {}), "server_side_binding": True}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    run = run_create(plan=PLAN, mode="autonomous")
    with transaction.atomic():
        locked = lock_run(run.pk)
        append_event(locked, "run.noted", {"n": 1})
        with CaptureQueriesContext(connection) as queries:
            locked.save_state()
    assert [q["sql"].count(";") for q in queries.captured_queries] == [0, 0]
    assert Event.objects.get(run=run, type="run.noted").seq == locked.last_seq
    assert verify_all() == []


def test_the_kept_insert_statements_are_bounded_whatever_the_row_counts() -> None:
    """A worker lives for days; each distinct row count would otherwise be kept forever."""
    run = run_create(plan=PLAN, mode="autonomous")
    with transaction.atomic():
        for rows in range(1, 80):
            sql.insert([_step(run, 1000 * rows + i) for i in range(rows)])
    assert sql._insert_sql.cache_info().currsize <= 64
    assert Step.objects.filter(run=run, attempt__gte=1000).count() == sum(range(1, 80))
