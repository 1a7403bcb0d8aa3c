"""The embedded relay: events whose ids commit out of order are still sent, once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from approvals.live import EventRelay, _events_after
from tests.support.waiting import wait_for
from workflows.events import event_append
from workflows.services import lock_run, run_create


def relay_at(last_id: int) -> EventRelay:
    relay = EventRelay()
    relay.last_id = last_id
    return relay


def test_a_skipped_id_is_sent_when_it_appears_and_never_twice(settings) -> None:
    settings.AGENTOS_LIVE_GAP_S = 10
    relay = relay_at(10)
    assert relay.take([11, 13], now=0.0) == [11, 13]
    assert relay.pending == {12: 0.0}, "12 may still be committing"
    assert relay.take([12, 14], now=1.0) == [12, 14]
    assert relay.pending == {}
    assert relay.take([13, 14], now=2.0) == [], "nothing is sent twice"


def test_a_gap_that_never_fills_is_given_up(settings) -> None:
    settings.AGENTOS_LIVE_GAP_S = 5
    relay = relay_at(0)
    assert relay.take([2], now=0.0) == [2]
    assert relay.take([], now=4.0) == [] and 1 in relay.pending
    assert relay.take([], now=5.5) == [] and relay.pending == {}, "a rolled-back insert"
    assert relay.take([3], now=6.0) == [3]


@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_after_a_newer_one_is_relayed(operator) -> None:
    """On PostgreSQL ids commit out of order; a plain `id > last` tail would miss one."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite commits one writer at a time, so ids appear in order")
    plan = {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]}
    slow = run_create(plan=plan, mode="autonomous", requester=operator)
    fast = run_create(plan=plan, mode="autonomous", requester=operator)
    relay = relay_at(_newest())
    inserted, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                event_append(run=lock_run(slow.pk), type="test.slow")
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(10)
    with transaction.atomic():
        event_append(run=lock_run(fast.pk), type="test.fast")

    first = _poll(relay)
    assert [e.type for e in first] == ["test.fast"]
    assert relay.pending, "the slow event's id is waited for"
    release.set()
    writer.join(10)
    second = wait_for(lambda: _poll(relay), timeout=5, message="the slow event")
    assert [e.type for e in second] == ["test.slow"]
    assert _poll(relay) == [] and relay.pending == {}


def _newest() -> int:
    from workflows.models import Event

    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _poll(relay: EventRelay) -> list:  # type: ignore[type-arg]
    import time

    assert relay.last_id is not None
    batch = {e.pk: e for e in _events_after(relay.last_id, sorted(relay.pending))}
    return [
        batch[i] for i in relay.take(list(batch), time.monotonic()) if batch[i].run_id is not None
    ]
