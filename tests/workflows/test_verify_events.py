"""verify_events: intact logs pass; each direct tampering names the first bad event."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from workflows.events import system_event_append
from workflows.models import Event, EventImmutable, Run
from workflows.services import run_cancel, run_create

pytestmark = pytest.mark.django_db

TABLE = Event._meta.db_table
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


def sql(statement: str, *params: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def verify() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_events")
    return str(caught.value)


def event(run: Run | None, seq: int) -> Event:
    return Event.objects.get(run=run, seq=seq)


def test_an_intact_log_verifies(logged, capsys) -> None:
    call_command("verify_events")
    assert "event log intact" in capsys.readouterr().out


def test_a_changed_row_is_named(logged) -> None:
    target = event(logged, 2)
    sql(f"UPDATE {TABLE} SET data = %s WHERE id = %s", json.dumps({"from": "x"}), target.pk)
    message = verify()
    assert f"run {logged.pk}: event id {target.pk} (seq 2)" in message and "changed" in message


def test_a_changed_actor_or_time_is_named(logged) -> None:
    target = event(logged, 1)
    sql(f"UPDATE {TABLE} SET actor_label = 'mallory' WHERE id = %s", target.pk)
    assert f"event id {target.pk} (seq 1)" in verify()


def test_a_deleted_middle_row_is_named(logged) -> None:
    sql(f"DELETE FROM {TABLE} WHERE id = %s", event(logged, 2).pk)
    message = verify()
    assert f"run {logged.pk}" in message and "(seq 3)" in message and "missing" in message


def test_a_deleted_last_row_is_named(logged) -> None:
    sql(f"DELETE FROM {TABLE} WHERE id = %s", event(logged, 3).pk)
    message = verify()
    assert f"run {logged.pk}" in message and "removed at the end" in message


def test_a_deleted_system_event_is_named(logged) -> None:
    sql(f"DELETE FROM {TABLE} WHERE id = %s", event(None, 2).pk)
    assert "system chain" in verify()


def test_an_inserted_row_is_named(logged) -> None:
    last = event(logged, 3)
    sql(f"INSERT INTO {TABLE} (run_id, seq, type, actor_label, data, at, correlation_id, "
        f"prev_hash, hash) VALUES (%s, 4, 'run.succeeded', 'mallory', '{{}}', %s, %s, %s, %s)",
        logged.pk, last.at, last.correlation_id, last.hash, "f" * 64)
    inserted = Event.objects.get(run=logged, seq=4)
    message = verify()
    assert f"event id {inserted.pk} (seq 4)" in message


def test_an_inserted_row_with_a_correct_hash_still_breaks_the_head(logged) -> None:
    """Someone who can compute hashes but not move the run's head is caught."""
    from workflows.events import event_hash

    last = event(logged, 3)
    digest = event_hash(run_id=logged.pk, seq=4, type="run.succeeded", actor_label="mallory",
                        data={}, at=last.at, correlation_id=last.correlation_id,
                        prev_hash=last.hash)
    sql(f"INSERT INTO {TABLE} (run_id, seq, type, actor_label, data, at, correlation_id, "
        f"prev_hash, hash, key_id) VALUES (%s, 4, 'run.succeeded', 'mallory', '{{}}', %s, %s, "
        f"%s, %s, %s)",
        logged.pk, last.at, last.correlation_id, last.hash, digest, last.key_id)
    message = verify()
    assert f"run {logged.pk}" in message and "head" in message


def test_reordered_rows_are_named(logged) -> None:
    one, two = event(logged, 1), event(logged, 2)
    sql(f"UPDATE {TABLE} SET seq = 99 WHERE id = %s", one.pk)
    sql(f"UPDATE {TABLE} SET seq = 1 WHERE id = %s", two.pk)
    sql(f"UPDATE {TABLE} SET seq = 2 WHERE id = %s", one.pk)
    message = verify()
    assert f"event id {two.pk} (seq 1)" in message


def test_an_event_moved_to_another_run_is_named(logged) -> None:
    child = Run.objects.get(parent=logged)
    moved = event(logged, 3)
    sql(f"UPDATE {TABLE} SET run_id = %s, seq = 2 WHERE id = %s", child.pk, moved.pk)
    message = verify()
    assert f"run {logged.pk}" in message


def test_no_path_changes_or_deletes_an_event(logged) -> None:
    first = event(logged, 1)
    with pytest.raises(EventImmutable):
        first.save()
    with pytest.raises(EventImmutable):
        first.delete()
    with pytest.raises(EventImmutable):
        Event.objects.filter(pk=first.pk).update(type="x")
    with pytest.raises(EventImmutable):
        Event.objects.filter(pk=first.pk).delete()
    call_command("verify_events")
