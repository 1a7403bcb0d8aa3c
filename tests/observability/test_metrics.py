"""GET /metrics: the token, the format, and each family's values after known activity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import ApprovalRequest
from approvals.services import approval_decide, requests_expire
from observability.heartbeats import heartbeat_beat
from observability.models import ProcessKind
from tests.support.runs import advance, pending_request
from workflows.models import Run

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789"


def scrape(token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    """Return every sample as {(name, sorted labels): value}."""
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        assert family.name.startswith("agentos_"), family.name
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_without_a_token_and_refuse_a_wrong_one(settings) -> None:
    settings.AGENTOS_METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404
    settings.AGENTOS_METRICS_TOKEN = TOKEN
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_every_family_is_present_with_its_type_on_an_empty_database(settings) -> None:
    settings.AGENTOS_METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    types = {f.name: f.type for f in text_string_to_metric_families(response.content.decode())}
    assert types == {
        "agentos_runs": "gauge",
        "agentos_steps": "counter",
        "agentos_step_seconds": "histogram",
        "agentos_decision_seconds": "histogram",
        "agentos_requests_pending": "gauge",
        "agentos_requests_overdue": "gauge",
        "agentos_escalations": "counter",
        "agentos_requests_timed_out": "counter",
        "agentos_workers": "gauge",
        "agentos_web_processes": "gauge",
        "agentos_runs_held_by_dead_workers": "gauge",
    }
    samples = scrape()
    assert value(samples, "agentos_runs", status="queued") == 0
    assert value(samples, "agentos_workers") == 0


def test_runs_steps_and_the_decision_histogram_follow_a_decided_request(
    settings, gated_run, reviewer
) -> None:
    settings.AGENTOS_METRICS_TOKEN = TOKEN
    run = gated_run()
    before = scrape()
    assert value(before, "agentos_runs", status="waiting") == 1
    assert value(before, "agentos_requests_pending", group="Reviewers") == 1
    assert value(before, "agentos_decision_seconds_count", workflow="plan", kind="approval") == 0

    # Opened two minutes ago, decided now.
    request = pending_request(run)
    ApprovalRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(seconds=120)
    )
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    run = advance(run)
    assert run.status == "succeeded", run.error

    after = scrape()
    labels = {"workflow": "plan", "kind": "approval"}
    assert value(after, "agentos_decision_seconds_count", **labels) == 1
    assert value(after, "agentos_decision_seconds_bucket", le="60.0", **labels) == 0
    assert value(after, "agentos_decision_seconds_bucket", le="300.0", **labels) == 1
    assert value(after, "agentos_decision_seconds_bucket", le="+Inf", **labels) == 1
    assert 119 <= value(after, "agentos_decision_seconds_sum", **labels) < 150
    assert value(after, "agentos_requests_pending", group="Reviewers") == 0
    assert value(after, "agentos_runs", status="waiting") == 0
    assert value(after, "agentos_runs", status="succeeded") == 1
    step = {"action": "test.ledger_append"}
    assert value(after, "agentos_steps_total", status="succeeded", **step) == 1
    assert value(after, "agentos_step_seconds_count", **step) == 1
    assert value(after, "agentos_step_seconds_bucket", le="+Inf", **step) == 1
    assert value(after, "agentos_step_seconds_sum", **step) > 0


def test_an_overdue_request_shows_in_the_overdue_gauge_and_escalation_counts(
    settings, gated_run
) -> None:
    settings.AGENTOS_METRICS_TOKEN = TOKEN
    late = gated_run(assign_to="Finance", due_in_s=60, on_timeout="escalate", escalate_to="CFO")
    gated_run(assign_to="Finance", due_in_s=3600)
    samples = scrape()
    assert value(samples, "agentos_requests_pending", group="Finance") == 2
    assert value(samples, "agentos_requests_overdue", group="Finance") == 0

    ApprovalRequest.objects.filter(pk=pending_request(late).pk).update(
        due_at=timezone.now() - timedelta(seconds=1)
    )
    samples = scrape()
    assert value(samples, "agentos_requests_overdue", group="Finance") == 1
    assert value(samples, "agentos_escalations_total") == 0

    assert requests_expire() == 1  # escalated to CFO, no longer due
    samples = scrape()
    assert value(samples, "agentos_requests_overdue", group="Finance") == 0
    assert value(samples, "agentos_requests_pending", group="Finance") == 1
    assert value(samples, "agentos_requests_pending", group="CFO") == 1
    assert value(samples, "agentos_escalations_total") == 1
    assert value(samples, "agentos_requests_timed_out_total") == 1


def test_workers_count_live_heartbeats_and_dead_workers_runs(settings, operator) -> None:
    settings.AGENTOS_METRICS_TOKEN = TOKEN
    heartbeat_beat(name="w:1:a", kind=ProcessKind.WORKER)
    heartbeat_beat(name="w:2:b", kind=ProcessKind.WORKER)
    heartbeat_beat(name="web:3:c", kind=ProcessKind.WEB)
    from observability.models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(name="w:2:b").update(
        last_seen=timezone.now() - timedelta(seconds=61)
    )
    Run.objects.create(
        plan={"nodes": []},
        requester=operator,
        status="running",
        lease_owner="w:2:b",
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    # Held by the live worker, or waiting without a lease: neither counts.
    for owner, status in [("w:1:a", "running"), ("", "waiting")]:
        Run.objects.create(
            plan={"nodes": []},
            requester=operator,
            status=status,
            lease_owner=owner,
            lease_expires_at=timezone.now() + timedelta(seconds=30) if owner else None,
        )
    samples = scrape()
    assert value(samples, "agentos_workers") == 1
    assert value(samples, "agentos_web_processes") == 1
    assert value(samples, "agentos_runs_held_by_dead_workers") == 1
    from observability.selectors import runs_held_by_dead_workers

    assert runs_held_by_dead_workers().count() == 1  # the admin's list agrees
    health = Client().get("/api/v1/health").json()
    assert health["workers"] == 1


def test_settled_steps_are_rolled_up_once_and_later_ones_counted_live(settings, operator) -> None:
    """The histograms fold settled steps into rollup rows and add the rest per scrape."""
    from observability.models import MetricRollup, RollupMark
    from workflows.models import Step

    settings.AGENTOS_METRICS_TOKEN = TOKEN
    run = Run.objects.create(plan={"nodes": []}, requester=operator)
    now = timezone.now()

    def step(node: str, age: timedelta, ms: float, status: str = "succeeded") -> None:
        Step.objects.create(
            run=run,
            node_id=node,
            position=0,
            action="files.move",
            status=status,
            idempotency_key=node,
            started_at=now - age,
            finished_at=now - age,
            duration_ms=ms,
        )

    step("old-1", timedelta(days=3), 400)
    step("old-2", timedelta(hours=1), 7000, status="failed")
    step("new-1", timedelta(seconds=5), 50)
    step("running", timedelta(seconds=1), 10, status="running")
    for _ in range(3):  # the same numbers every time: nothing counted twice
        samples = scrape()
        action = {"action": "files.move"}
        assert value(samples, "agentos_step_seconds_count", **action) == 3
        assert value(samples, "agentos_step_seconds_bucket", le="0.1", **action) == 1
        assert value(samples, "agentos_step_seconds_bucket", le="0.5", **action) == 2
        assert value(samples, "agentos_step_seconds_bucket", le="5.0", **action) == 2
        assert value(samples, "agentos_step_seconds_bucket", le="10.0", **action) == 3
        assert abs(value(samples, "agentos_step_seconds_sum", **action) - 7.45) < 1e-6
        assert value(samples, "agentos_steps_total", status="succeeded", **action) == 2
        assert value(samples, "agentos_steps_total", status="failed", **action) == 1
    # The two settled steps are in the rollup; the recent one is not yet.
    mark = RollupMark.objects.get(family="steps")
    assert now - timedelta(seconds=settings.AGENTOS_METRICS_SETTLE_S + 5) < mark.upto
    assert sum(r.count for r in MetricRollup.objects.filter(family="steps")) == 2


def test_ended_runs_are_rolled_up_once_and_unfinished_ones_counted_live(
    settings, operator
) -> None:
    """agentos_runs: ended runs from the rollup plus those ended since its mark."""
    from observability.models import MetricRollup

    settings.AGENTOS_METRICS_TOKEN = TOKEN
    now = timezone.now()

    def run(status: str, ended_ago: timedelta | None = None) -> Run:
        return Run.objects.create(
            plan={"nodes": []},
            requester=operator,
            status=status,
            finished_at=None if ended_ago is None else now - ended_ago,
        )

    run("succeeded", timedelta(days=2))
    run("failed", timedelta(hours=1))
    run("succeeded", timedelta(seconds=5))  # after the mark: counted live
    run("queued")
    run("waiting")
    expected = {"queued": 1, "running": 0, "waiting": 1, "succeeded": 2, "failed": 1}
    for _ in range(3):  # the same numbers every time: nothing counted twice
        samples = scrape()
        for status, n in expected.items():
            assert value(samples, "agentos_runs", status=status) == n, status
    folded = {r.labels: r.count for r in MetricRollup.objects.filter(family="ended_runs")}
    assert folded == {'["succeeded"]': 1, '["failed"]': 1}

    run("cancelled", timedelta(seconds=1))
    Run.objects.filter(status="queued").update(status="running")
    samples = scrape()
    assert value(samples, "agentos_runs", status="cancelled") == 1
    assert value(samples, "agentos_runs", status="running") == 1
    assert value(samples, "agentos_runs", status="queued") == 0


def test_unfinished_runs_and_failed_steps_are_counted_from_indexes_alone() -> None:
    """Neither count reads the table: an index alone answers each."""
    from django.db import connection

    from observability.metrics import unfinished_runs_by_status
    from observability.reports import failed_steps_by_action

    day_ago = timezone.now() - timedelta(days=1)
    runs = unfinished_runs_by_status()
    failures = failed_steps_by_action(day_ago)
    if connection.vendor == "postgresql":
        # A test database's tables are tiny: make the planner show what it
        # does with the indexes (at scale it picks them by cost).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        assert "Index Only Scan using run_unfinished_status" in runs.explain()
        assert "Index Only Scan using step_status_finished" in failures.explain()
    else:
        # SQLite: every index holds the rowid, so the status index covers it.
        assert "USING COVERING INDEX" in runs.explain()
        assert "USING COVERING INDEX step_status_finished" in failures.explain()
