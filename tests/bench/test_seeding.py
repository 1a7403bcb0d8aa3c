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


def test_seeded_steps_are_finished_steps_of_the_seeded_runs() -> None:
    from workflows.models import Step
    from workflows.states import StepStatus

    call_command("seed_scale", runs=40, events=160, steps=3)

    assert Step.objects.count() == 120
    assert Step.objects.values("run").distinct().count() == 40
    assert Step.objects.filter(finished_at=None).count() == 0
    assert set(Step.objects.values_list("status", flat=True)) <= {
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.TIMED_OUT,
    }
    step = Step.objects.order_by("id").first()
    assert step.node_path == step.node_id and step.duration_ms > 0
    assert verify_all() == []


def test_seeding_steps_leaves_the_runs_events_and_requests_as_without_them() -> None:
    call_command("seed_scale", runs=30, events=120)
    without = list(Run.objects.order_by("id").values_list("status", flat=True))
    call_command("seed_scale", runs=30, events=120, steps=2)
    # The same draws from the runs' random sequence (the steps have their own).
    with_steps = list(Run.objects.order_by("id").values_list("status", flat=True))[30:]

    assert with_steps == without


def test_negative_steps_are_refused_naming_the_option() -> None:
    with pytest.raises(CommandError, match="--steps"):
        call_command("seed_scale", runs=10, events=20, steps=-1)
    assert Run.objects.count() == 0


def test_kept_data_is_reused_only_when_its_marker_matches_the_seed() -> None:
    from bench import kept

    params = kept.wanted(runs=100, events=1000, steps_per_run=3)
    assert kept.reseed_reason(None, params, []).startswith("no marker")
    kept.write_marker(params, 12.5)
    marker = kept.read_marker()
    assert marker is not None and marker["params"] == params and marker["seconds"] == 12.5
    assert "workflows.0001_initial" in marker["migrations"]
    # This test database is migrated by this code: nothing unknown, nothing pending.
    assert kept.unknown_migrations() == [] and kept.pending_migrations() == []
    assert kept.reseed_reason(marker, params, []) == ""
    other = kept.wanted(runs=100, events=1000, steps_per_run=2)
    assert kept.reseed_reason(marker, other, []).startswith("seeded with")
    assert "workflows.9999_elsewhere" in kept.reseed_reason(
        marker, params, ["workflows.9999_elsewhere"]
    )
    stale = {**marker, "params": {**params, "data_version": kept.DATA_VERSION - 1}}
    assert kept.reseed_reason(stale, params, []) != ""


def test_prepare_reuses_matching_kept_data_without_seeding() -> None:
    from bench import kept

    kept.write_marker(kept.wanted(runs=100, events=1000, steps_per_run=3), 1.0)
    said: list[str] = []
    kept.prepare(runs=100, events=1000, steps_per_run=3, keep=True, say=said.append)

    assert Run.objects.count() == 0
    assert len(said) == 1 and "reusing the data seeded" in said[0]
