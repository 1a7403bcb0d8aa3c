"""Leases: one worker at a time on a run.

The engine takes a run's lease in the run's first transaction, with its
first decision (`workflows.engine._take`); these drive it through
`run_advance`, as a worker's task does.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workflows.engine import run_advance
from workflows.leases import lease_holds, lease_release, lease_renew
from workflows.models import Event, Run
from workflows.services import run_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


def _run() -> Run:
    return run_create(
        mode="autonomous", plan={"nodes": [{"id": "gate", "type": "approval", "title": "?"}]}
    )


def _hold(run: Run, owner: str, *, for_s: float = 60) -> None:
    """Give `owner` the run's lease, as its worker's first transaction left it."""
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        lease_owner=owner,
        lease_expires_at=timezone.now() + timedelta(seconds=for_s),
    )


def test_a_held_lease_keeps_others_out_until_it_expires() -> None:
    run = _run()
    _hold(run, "a")
    events = Event.objects.filter(run=run).count()
    run_advance(run_id=run.pk, owner="b")
    run.refresh_from_db()
    # Not b's to take: nothing written, the lease still a's.
    assert run.status == RunStatus.RUNNING and run.lease_owner == "a"
    assert Event.objects.filter(run=run).count() == events
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_advance(run_id=run.pk, owner="b")
    run.refresh_from_db()
    # Expired: b took it and moved the run on (to its gate, which gives the lease back).
    assert run.status == RunStatus.WAITING and run.lease_owner == ""
    assert not lease_renew(run.pk, "a"), "the worker that lost it cannot renew"


def test_a_run_no_longer_active_is_not_taken() -> None:
    run = _run()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
    run_advance(run_id=run.pk, owner="b")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.lease_owner == ""
    assert not Event.objects.filter(run=run, type="run.running").exists()


def test_the_lease_is_taken_in_the_runs_first_transaction() -> None:
    """No commit of its own: the lease is written by the first decision's save."""
    run = _run()
    with CaptureQueriesContext(connection) as queries:
        run_advance(run_id=run.pk, owner="b")
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING
    # On PostgreSQL a save sends its events' INSERT and the run's UPDATE as one
    # query (workflows.sql): each statement is looked at on its own.
    writes = [
        statement.upper()
        for q in queries.captured_queries
        for statement in re.split(r";\s*(?=UPDATE )", q["sql"])
        if statement.lstrip().upper().startswith('UPDATE "WORKFLOWS_RUN"')
    ]
    # The first write to the run is its first decision's save (the lease
    # with its state), not an UPDATE of the lease alone, committed before.
    assert '"STATUS" =' in writes[0].split(" WHERE ")[0], writes[0]


def test_an_expired_lease_nobody_took_is_still_its_owners() -> None:
    """A slow worker (a loaded machine) carries on if nobody took over."""
    run = _run()
    _hold(run, "a", for_s=-1)
    run.refresh_from_db()
    assert lease_holds(run, "a")
    assert lease_renew(run.pk, "a")
    run.refresh_from_db()
    assert run.lease_expires_at > timezone.now()


def test_release_only_frees_ones_own_lease() -> None:
    run = _run()
    _hold(run, "a")
    lease_release(run.pk, "b")
    run.refresh_from_db()
    assert run.lease_owner == "a"
    lease_release(run.pk, "a")
    run.refresh_from_db()
    assert run.lease_owner == "" and run.lease_expires_at is None
