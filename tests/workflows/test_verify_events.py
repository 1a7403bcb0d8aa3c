"""verify_events: intact logs pass; each direct tampering names the first bad event."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from tests.support.tampering import TABLE, event, sql, verify
from workflows.models import Event, EventImmutable, Run
from workflows.services import run_create

pytestmark = pytest.mark.django_db

PLAN = {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]}


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
    sql(
        f"INSERT INTO {TABLE} (run_id, seq, type, actor_label, data, at, correlation_id, "
        f"prev_hash, hash) VALUES (%s, 4, 'run.succeeded', 'mallory', '{{}}', %s, %s, %s, %s)",
        logged.pk,
        last.at,
        last.correlation_id,
        last.hash,
        "f" * 64,
    )
    inserted = Event.objects.get(run=logged, seq=4)
    message = verify()
    assert f"event id {inserted.pk} (seq 4)" in message


def test_an_inserted_row_with_a_correct_hash_still_breaks_the_head(logged) -> None:
    """Someone who can compute hashes but not move the run's head is caught."""
    from workflows.events import event_hash

    last = event(logged, 3)
    digest = event_hash(
        run_id=logged.pk,
        seq=4,
        type="run.succeeded",
        actor_label="mallory",
        data={},
        at=last.at,
        correlation_id=last.correlation_id,
        prev_hash=last.hash,
    )
    sql(
        f"INSERT INTO {TABLE} (run_id, seq, type, actor_label, data, at, correlation_id, "
        f"prev_hash, hash, key_id) VALUES (%s, 4, 'run.succeeded', 'mallory', '{{}}', %s, %s, "
        f"%s, %s, %s)",
        logged.pk,
        last.at,
        last.correlation_id,
        last.hash,
        digest,
        last.key_id,
    )
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


# Keyed chains (issue 10, item 9): a writer without AGENTOS_AUDIT_KEY cannot
# rewrite history and recompute the chain so that it verifies.

GATED = {
    "slug": "gated-history",
    "title": "Gated",
    "mode": "assisted",
    "plan": {
        "nodes": [{"id": "gate", "type": "approval", "title": "Go?", "assign_to": "Reviewers"}]
    },
}


@pytest.fixture
def decided(operator, reviewer) -> Run:  # type: ignore[no-untyped-def]
    """A run whose gate the reviewer approved."""
    from approvals.models import ApprovalRequest
    from approvals.services import approval_decide
    from workflows.engine import run_advance
    from workflows.services import workflow_create

    workflow = workflow_create(actor=operator, raw_spec=GATED)
    run = run_create(workflow=workflow, context={}, requester=operator)
    run_advance(run_id=run.pk)
    approval_decide(
        request_id=ApprovalRequest.objects.get(run=run).pk, actor=reviewer, decision="approve"
    )
    run.refresh_from_db()
    assert Event.objects.get(run=run, type="approval.decided").actor_label == "reviewer"
    return run


def rechain(run: Run, *, sign, key_id: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Recompute every hash of a run's chain with `sign` and move its head, as a forger would."""
    from workflows.events import GENESIS, _hashed_body

    prev = GENESIS
    for e in Event.objects.filter(run=run).order_by("seq"):
        digest = sign(
            _hashed_body(
                run_id=run.pk,
                seq=e.seq,
                type=e.type,
                actor_label=e.actor_label,
                data=e.data,
                at=e.at,
                correlation_id=e.correlation_id,
                prev_hash=prev,
            )
        )
        sql(f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE id = %s", prev, digest, e.pk)
        if key_id is not None:
            sql(f"UPDATE {TABLE} SET key_id = %s WHERE id = %s", key_id, e.pk)
        prev = digest
    sql(f"UPDATE {Run._meta.db_table} SET last_hash = %s WHERE id = %s", prev, run.pk)


def plain_sha256(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()


def test_a_changed_decider_with_a_recomputed_sha256_chain_is_named(decided) -> None:
    decision = Event.objects.get(run=decided, type="approval.decided")
    sql(f"UPDATE {TABLE} SET actor_label = 'operator' WHERE id = %s", decision.pk)
    rechain(decided, sign=plain_sha256)
    message = verify()
    assert f"run {decided.pk}: event id " in message and "(seq 1)" in message
    assert "hash does not match" in message


def test_a_decider_rewritten_as_an_unkeyed_legacy_chain_is_named(decided) -> None:
    """Marking rows as written before the key existed does not get a forger past it."""
    decision = Event.objects.get(run=decided, type="approval.decided")
    sql(f"UPDATE {TABLE} SET actor_label = 'operator' WHERE id = %s", decision.pk)
    rechain(decided, sign=plain_sha256, key_id="")
    message = verify()
    assert f"run {decided.pk}" in message and "(seq 1)" in message
    assert "no key id" in message and "legacy boundary" in message


def test_a_chain_recomputed_with_a_wrong_key_is_named(decided) -> None:
    import hashlib
    import hmac

    decision = Event.objects.get(run=decided, type="approval.decided")
    sql(f"UPDATE {TABLE} SET actor_label = 'operator' WHERE id = %s", decision.pk)
    rechain(
        decided, sign=lambda body: hmac.new(b"guessed-key-" * 4, body, hashlib.sha256).hexdigest()
    )
    message = verify()
    assert f"run {decided.pk}" in message and "(seq 1)" in message
    assert "signed with another key" in message


def test_an_unknown_key_id_is_named(decided) -> None:
    first = event(decided, 1)
    sql(f"UPDATE {TABLE} SET key_id = 'feedfacefeedface' WHERE id = %s", first.pk)
    message = verify()
    assert f"event id {first.pk} (seq 1)" in message and "unknown key id" in message


def test_updates_through_every_manager_and_bulk_path_are_refused(logged) -> None:
    first = event(logged, 1)
    with pytest.raises(EventImmutable):
        Event._base_manager.filter(pk=first.pk).update(actor_label="mallory")
    with pytest.raises(EventImmutable):
        Event._default_manager.all().update(type="x")
    with pytest.raises(EventImmutable):
        logged.events.update(actor_label="mallory")
    first.actor_label = "mallory"
    with pytest.raises(EventImmutable):
        Event.objects.bulk_update([first], ["actor_label"])
    with pytest.raises(EventImmutable):
        Event._base_manager.bulk_update([first], ["actor_label"])
    with pytest.raises(EventImmutable):
        Event._base_manager.filter(pk=first.pk).delete()
    copy = Event(**{f.attname: getattr(first, f.attname) for f in Event._meta.concrete_fields})
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()  # a new instance with an existing id is an INSERT, never an UPDATE
    with pytest.raises(EventImmutable), transaction.atomic():
        copy.save_base(raw=True)  # the path loaddata takes
    with pytest.raises(EventImmutable):
        Event.objects.bulk_create(
            [copy], update_conflicts=True, unique_fields=["id"], update_fields=["actor_label"]
        )
    assert Event.objects.get(pk=first.pk).actor_label == "operator"
    call_command("verify_events")


def test_deleting_a_user_still_clears_the_actor_and_the_log_verifies(logged, operator) -> None:
    """SET_NULL on the actor key is the one change allowed: the hash covers the label."""
    operator.delete()
    assert not Event.objects.filter(actor__isnull=False, actor_label="operator").exists()
    assert Event.objects.filter(actor_label="operator").exists()
    call_command("verify_events")
