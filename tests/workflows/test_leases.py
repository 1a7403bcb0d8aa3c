"""Leases: one worker at a time, without row locks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from workflows.leases import lease_acquire, lease_holds, lease_release, lease_renew
from workflows.models import Run
from workflows.services import run_create
from workflows.states import RunStatus

pytestmark = pytest.mark.django_db


def _run() -> Run:
    run = run_create(
        mode="autonomous", plan={"nodes": [{"id": "gate", "type": "approval", "title": "?"}]}
    )
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    return run


def test_a_held_lease_keeps_others_out_until_it_expires() -> None:
    run = _run()
    assert lease_acquire(run.pk, "a")
    assert not lease_acquire(run.pk, "b")
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lease_acquire(run.pk, "b")
    run.refresh_from_db()
    assert not lease_holds(run, "a") and lease_holds(run, "b")
    assert not lease_renew(run.pk, "a"), "the worker that lost it cannot renew"


def test_an_expired_lease_nobody_took_is_still_its_owners() -> None:
    """A slow worker (a loaded machine) carries on if nobody took over."""
    run = _run()
    assert lease_acquire(run.pk, "a")
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run.refresh_from_db()
    assert lease_holds(run, "a")
    assert lease_renew(run.pk, "a")
    run.refresh_from_db()
    assert run.lease_expires_at > timezone.now()


def test_release_only_frees_ones_own_lease() -> None:
    run = _run()
    assert lease_acquire(run.pk, "a")
    lease_release(run.pk, "b")
    assert not lease_acquire(run.pk, "b")
    lease_release(run.pk, "a")
    assert lease_acquire(run.pk, "b")
