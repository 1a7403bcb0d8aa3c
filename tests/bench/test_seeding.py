"""seed_scale: many runs in bulk, with hash chains that verify."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import ApprovalRequest
from workflows.events import verify_all
from workflows.models import Event, Run

pytestmark = pytest.mark.django_db


def test_seeded_runs_have_valid_chains_a_mix_of_statuses_and_pending_requests(capsys) -> None:
    call_command("seed_scale", runs=300, events=3000, batch=64)

    assert Run.objects.count() == 300
    assert Event.objects.exclude(run=None).count() == 3000
    assert verify_all() == []
    statuses = set(Run.objects.values_list("status", flat=True))
    assert {"succeeded", "failed", "waiting"} <= statuses
    waiting = Run.objects.filter(status="waiting").count()
    assert ApprovalRequest.objects.filter(status="pending").count() == waiting > 0
    assert Run.objects.filter(status="succeeded", finished_at=None).count() == 0
    assert "seeded 300 runs, 3000 events" in capsys.readouterr().out


def test_seeding_twice_appends_runs_after_the_existing_ones() -> None:
    call_command("seed_scale", runs=20, events=100)
    call_command("seed_scale", runs=20, events=100)

    assert Run.objects.count() == 40
    assert verify_all() == []


def test_impossible_sizes_are_refused_naming_the_option() -> None:
    with pytest.raises(CommandError, match="--events"):
        call_command("seed_scale", runs=10, events=5)
    with pytest.raises(CommandError, match="--runs"):
        call_command("seed_scale", runs=0, events=5)
    assert Run.objects.count() == 0


def test_seeded_events_are_signed_by_the_appends_own_code(settings) -> None:
    """No hand-rolled hashes: every seeded event carries the audit key's HMAC."""
    from workflows.audit_keys import audit_keys
    from workflows.checkpoints import checkpoint_write

    call_command("seed_scale", runs=12, events=60)
    assert set(Event.objects.values_list("key_id", flat=True)) == {audit_keys().current}
    checkpoint_write()
    call_command("verify_events")

    settings.AGENTOS_AUDIT_KEY = "not-the-key-the-seeder-used-0123456789"
    assert verify_all() != []
