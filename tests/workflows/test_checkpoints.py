"""Signed checkpoints outside the database catch truncation, rewound heads and deleted runs."""

from __future__ import annotations

import hashlib
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.support.tampering import TABLE, event, sql, verify
from workflows.audit_keys import audit_keys, key_id
from workflows.checkpoints import checkpoint_path, checkpoint_write
from workflows.events import GENESIS, _hashed_body, event_append, system_event_append
from workflows.models import Event, Run, SystemChain
from workflows.services import run_create

pytestmark = pytest.mark.django_db

RUNS = Run._meta.db_table
PLAN = {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]}
OLD_KEY = "test-only-audit-key-0123456789abcdef"  # tests/settings.py's
NEW_KEY = "the-key-after-rotation-0123456789abcdefgh"


def lines() -> list[dict]:
    return [json.loads(line) for line in checkpoint_path().read_text().splitlines()]


def note(run: Run, n: int) -> None:
    from django.db import transaction

    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        event_append(run=run, type="test.note", data={"n": n})


def out(*args: str) -> str:
    buffer = StringIO()
    call_command(*args, stdout=buffer)
    return buffer.getvalue()


def test_deleting_the_newest_events_and_rewinding_the_head_is_named(logged) -> None:
    assert checkpoint_write() == 1
    first = event(logged, 1)
    sql(f"DELETE FROM {TABLE} WHERE run_id = %s AND seq > 1", logged.pk)
    sql(f"UPDATE {RUNS} SET last_seq = 1, last_hash = %s WHERE id = %s", first.hash, logged.pk)

    message = verify()
    assert f"run {logged.pk}: 2 events missing after seq 1" in message
    assert "checkpoint line 1 recorded the chain at seq 3" in message


def test_deleting_a_run_with_all_its_rows_is_named(operator) -> None:
    kept = run_create(plan=PLAN, context={}, requester=operator)
    gone = run_create(plan=PLAN, context={}, requester=operator)
    note(gone, 1)
    checkpoint_write()
    sql(f"DELETE FROM {TABLE} WHERE run_id = %s", gone.pk)
    sql(f"DELETE FROM {RUNS} WHERE id = %s", gone.pk)

    message = verify()
    assert f"run {gone.pk} deleted" in message and "seq 2" in message
    assert f"run {kept.pk}" not in message


def test_truncating_the_system_chain_is_named(operator) -> None:
    for n in range(3):
        system_event_append(type="test.note", data={"n": n})
    checkpoint_write()
    head = SystemChain.objects.get(pk=1)
    before = Event.objects.get(run=None, seq=head.last_seq - 1)
    sql(f"DELETE FROM {TABLE} WHERE run_id IS NULL AND seq = %s", head.last_seq)
    sql("UPDATE workflows_systemchain SET last_seq = %s, last_hash = %s", before.seq, before.hash)

    assert f"system chain: 1 events missing after seq {before.seq}" in verify()


def test_a_rewrite_below_a_checkpoint_is_named_even_when_signed_with_the_key(logged) -> None:
    """Someone holding the key (an insider) still cannot move history the checkpoint saw."""
    checkpoint_write()
    keys = audit_keys()
    prev = GENESIS
    for e in Event.objects.filter(run=logged).order_by("seq"):
        label = "mallory" if e.seq == 1 else e.actor_label
        digest = keys.sign(
            _hashed_body(
                run_id=logged.pk,
                seq=e.seq,
                type=e.type,
                actor_label=label,
                data=e.data,
                at=e.at,
                correlation_id=e.correlation_id,
                prev_hash=prev,
            )
        )
        sql(
            f"UPDATE {TABLE} SET actor_label = %s, prev_hash = %s, hash = %s WHERE id = %s",
            label,
            prev,
            digest,
            e.pk,
        )
        prev = digest
    sql(f"UPDATE {RUNS} SET last_hash = %s WHERE id = %s", prev, logged.pk)

    message = verify()
    assert f"run {logged.pk}: seq 3 differs from checkpoint line 1" in message


def test_an_edited_checkpoint_line_is_named(logged) -> None:
    checkpoint_write()
    note(logged, 1)
    checkpoint_write()
    path = checkpoint_path()
    text = path.read_text().splitlines()
    record = json.loads(text[0])
    record["heads"][str(logged.pk)][0] = 1  # pretend the chain was shorter
    text[0] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(text) + "\n")

    message = verify()
    assert "checkpoint line 1" in message and "signature does not match" in message


def test_a_removed_checkpoint_line_is_named(logged) -> None:
    checkpoint_write()
    note(logged, 1)
    checkpoint_write()
    path = checkpoint_path()
    path.write_text(path.read_text().splitlines()[1] + "\n")

    assert "checkpoint line 1" in verify() and "does not follow line 0" in verify()


def test_a_line_signed_with_another_key_is_named(logged, settings) -> None:
    checkpoint_write()
    note(logged, 1)
    settings.AGENTOS_AUDIT_KEY = "a-forgers-own-key-0123456789abcdefgh"
    checkpoint_write()
    settings.AGENTOS_AUDIT_KEY = OLD_KEY

    message = verify()
    assert "checkpoint line 2" in message and "unknown key id" in message


def test_the_writer_records_moved_chains_only_and_nothing_when_idle(logged, operator) -> None:
    other = run_create(plan=PLAN, context={}, requester=operator)
    assert checkpoint_write() == 1
    assert set(lines()[0]["heads"]) == {
        str(pk) for pk in Run.objects.values_list("pk", flat=True)
    } | {"system"}
    assert checkpoint_write() is None

    note(other, 1)
    assert checkpoint_write() == 2
    second = lines()[1]
    assert second["heads"] == {
        str(other.pk): [other.last_seq + 1, Run.objects.get(pk=other.pk).last_hash]
    }
    assert second["prev"] == lines()[0]["mac"] and second["n"] == 2
    assert checkpoint_write() is None
    assert "2 checkpoint lines" in out("verify_events")


def test_an_intact_log_reports_what_the_checkpoints_cover(logged) -> None:
    assert "no checkpoints yet" in out("verify_events")
    out("audit_checkpoint")
    report = out("verify_events")
    assert "event log intact" in report and "1 checkpoint lines" in report


def test_the_checkpoint_task_is_scheduled_and_writes(logged) -> None:
    from django_q.models import Schedule

    from workflows.tasks import CHECKPOINT_SCHEDULE, ensure_schedules, write_audit_checkpoint

    ensure_schedules()
    schedule = Schedule.objects.get(name=CHECKPOINT_SCHEDULE)
    assert schedule.func == "workflows.tasks.write_audit_checkpoint" and schedule.minutes == 1
    assert write_audit_checkpoint() == 1 and len(lines()) == 1


def _make_legacy(run_id: int | None) -> None:
    """Rewrite a chain as it was before the log was keyed: plain SHA-256, no key id."""
    prev = GENESIS
    for e in Event.objects.filter(run_id=run_id).order_by("seq"):
        digest = hashlib.sha256(
            _hashed_body(
                run_id=run_id,
                seq=e.seq,
                type=e.type,
                actor_label=e.actor_label,
                data=e.data,
                at=e.at,
                correlation_id=e.correlation_id,
                prev_hash=prev,
            )
        ).hexdigest()
        sql(
            f"UPDATE {TABLE} SET prev_hash = %s, hash = %s, key_id = '' WHERE id = %s",
            prev,
            digest,
            e.pk,
        )
        prev = digest
    if run_id is None:
        sql("UPDATE workflows_systemchain SET last_hash = %s", prev)
    else:
        sql(f"UPDATE {RUNS} SET last_hash = %s WHERE id = %s", prev, run_id)


def test_events_from_before_the_key_verify_only_below_the_first_checkpoint(logged) -> None:
    _make_legacy(logged.pk)
    _make_legacy(None)
    assert "no checkpoint sealed a legacy boundary" in verify()  # nothing sealed them yet

    checkpoint_write()  # line 1 seals the legacy rows
    call_command("verify_events")
    note(logged, 1)  # new events are keyed and chain on
    checkpoint_write()
    call_command("verify_events")
    assert Event.objects.get(run=logged, seq=4).key_id == audit_keys().current

    # A forger appends an unkeyed event and moves the head: beyond the seal.
    last = event(logged, 4)
    body = _hashed_body(
        run_id=logged.pk,
        seq=5,
        type="run.succeeded",
        actor_label="mallory",
        data={},
        at=last.at,
        correlation_id=last.correlation_id,
        prev_hash=last.hash,
    )
    digest = hashlib.sha256(body).hexdigest()
    sql(
        f"INSERT INTO {TABLE} (run_id, seq, type, actor_label, data, at, correlation_id, "
        f"prev_hash, hash, key_id) VALUES (%s, 5, 'run.succeeded', 'mallory', '{{}}', %s, %s, "
        f"%s, %s, '')",
        logged.pk,
        last.at,
        last.correlation_id,
        last.hash,
        digest,
    )
    sql(f"UPDATE {RUNS} SET last_seq = 5, last_hash = %s WHERE id = %s", digest, logged.pk)
    message = verify()
    assert f"run {logged.pk}" in message and "(seq 5)" in message and "no key id" in message


def test_a_rotated_key_still_verifies_what_it_signed(logged, settings) -> None:
    assert settings.AGENTOS_AUDIT_KEY == OLD_KEY
    note(logged, 1)
    checkpoint_write()
    settings.AGENTOS_AUDIT_KEY, settings.AGENTOS_AUDIT_OLD_KEYS = NEW_KEY, [OLD_KEY]
    note(logged, 2)
    assert event(logged, 4).key_id == key_id(OLD_KEY.encode())
    assert event(logged, 5).key_id == key_id(NEW_KEY.encode())
    call_command("verify_events")
    checkpoint_write()
    call_command("verify_events")

    settings.AGENTOS_AUDIT_OLD_KEYS = []
    message = verify()
    assert "unknown key id" in message


def test_a_retired_key_cannot_extend_a_chain_past_the_checkpoints(logged, settings) -> None:
    """Someone who learnt an old key cannot append with it after the rotation."""
    checkpoint_write()
    settings.AGENTOS_AUDIT_KEY, settings.AGENTOS_AUDIT_OLD_KEYS = NEW_KEY, [OLD_KEY]
    checkpoint_write()
    settings.AGENTOS_AUDIT_KEY = OLD_KEY  # what a holder of the old key can sign
    note(logged, 1)
    settings.AGENTOS_AUDIT_KEY, settings.AGENTOS_AUDIT_OLD_KEYS = NEW_KEY, [OLD_KEY]

    message = verify()
    assert f"run {logged.pk}" in message and "(seq 4)" in message and "retired key" in message


def test_the_checkpoint_folder_is_outside_the_database_and_configurable(
    audit_checkpoints: Path,
) -> None:
    assert checkpoint_path() == audit_checkpoints / "checkpoints.jsonl"


def test_an_unkeyed_event_appended_to_a_sealed_legacy_chain_is_named(logged) -> None:
    _make_legacy(logged.pk)
    checkpoint_write()  # seals seq 1..3 of the run as legacy
    last = event(logged, 3)
    digest = hashlib.sha256(
        _hashed_body(
            run_id=logged.pk,
            seq=4,
            type="run.succeeded",
            actor_label="mallory",
            data={},
            at=last.at,
            correlation_id=last.correlation_id,
            prev_hash=last.hash,
        )
    ).hexdigest()
    sql(
        f"INSERT INTO {TABLE} (run_id, seq, type, actor_label, data, at, correlation_id, "
        f"prev_hash, hash) VALUES (%s, 4, 'run.succeeded', 'mallory', '{{}}', %s, %s, %s, %s)",
        logged.pk,
        last.at,
        last.correlation_id,
        last.hash,
        digest,
    )
    sql(f"UPDATE {RUNS} SET last_seq = 4, last_hash = %s WHERE id = %s", digest, logged.pk)

    message = verify()
    assert f"run {logged.pk}" in message and "(seq 4)" in message
    assert "beyond the legacy boundary (seq 3" in message
