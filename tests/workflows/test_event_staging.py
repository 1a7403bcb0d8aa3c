"""The engine's events go in with its run's save: same chain, one INSERT, never lost."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from workflows.events import event_stage, verify_chain
from workflows.models import Event, Run
from workflows.services import lock_run, run_create

pytestmark = pytest.mark.django_db

PLAN = {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]}


def test_staged_events_are_inserted_by_the_runs_save_in_one_statement_and_chain() -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    before = run.last_seq
    with transaction.atomic():
        locked = lock_run(run.pk)
        event_stage(run=locked, type="step.succeeded", data={"node": "a"})
        event_stage(run=locked, type="step.started", data={"node": "b"})
        # Staged, not yet written: the chain head moved on the instance only.
        assert Event.objects.filter(run=run, seq__gt=before).count() == 0
        assert locked.last_seq == before + 2
        with CaptureQueriesContext(connection) as queries:
            locked.save_state()
        inserts = [
            q for q in queries.captured_queries if 'INSERT INTO "workflows_event"' in q["sql"]
        ]
        assert len(inserts) == 1
    run.refresh_from_db()
    events = list(Event.objects.filter(run=run).order_by("seq"))
    assert [e.type for e in events[-2:]] == ["step.succeeded", "step.started"]
    assert run.last_seq == events[-1].seq == before + 2
    assert run.last_hash == events[-1].hash
    problem = verify_chain(events, run_id=run.pk, head_seq=run.last_seq, head_hash=run.last_hash)
    assert problem is None


def test_a_commit_with_events_still_staged_raises(django_capture_on_commit_callbacks) -> None:
    run = run_create(plan=PLAN, mode="autonomous")
    with pytest.raises(RuntimeError, match="staged but never saved"):
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                locked = lock_run(run.pk)
                event_stage(run=locked, type="step.started", data={"node": "a"})
    assert not Event.objects.filter(run=run, type="step.started").exists()
    assert Run.objects.get(pk=run.pk).last_seq == run.last_seq
