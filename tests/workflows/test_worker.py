"""Real qcluster processes: runs finish, survive SIGKILL, and never run twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from approvals.services import approval_decide
from tests.support.runs import status
from tests.support.scale import fire_requeue_schedule
from tests.support.waiting import wait_for
from workflows.events import verify_all
from workflows.models import Event, Run
from workflows.services import run_create
from workflows.states import TERMINAL, RunStatus, StepStatus

pytestmark = pytest.mark.worker


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_worker_runs_a_plan_and_resumes_it_after_approval(
    cluster, operator, reviewer, tmp_path
) -> None:
    ledger = tmp_path / "ledger"
    cluster()
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "a",
                    "action": "test.ledger_append",
                    "params": {"ledger": str(ledger), "line": "a"},
                },
                {"id": "gate", "type": "approval", "title": "Go on?"},
                {
                    "id": "b",
                    "action": "test.ledger_append",
                    "params": {"ledger": str(ledger), "line": "b"},
                },
            ]
        },
    )
    wait_for(lambda: status(run) == RunStatus.WAITING, message="the run to pause")
    request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    wait_for(lambda: status(run) == RunStatus.SUCCEEDED, message="the run to finish")
    assert lines(ledger) == ["a", "b"]
    assert verify_all() == []


def _kill_mid_step(cluster, run: Run, ledger: Path) -> None:
    first = cluster()
    wait_for(lambda: "start slow 1" in lines(ledger), message="the slow step to start")
    first.kill()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.lease_owner, "the dead worker held it"
    # The lease (3 s in tests) must run out before anyone may take the run.
    wait_for(
        lambda: Run.objects.filter(pk=run.pk, lease_expires_at__lt=_now()).exists(),
        timeout=10,
        message="the lease to expire",
    )
    cluster()
    fire_requeue_schedule()


def _now():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return timezone.now()


def test_a_sigkilled_worker_loses_nothing(cluster, operator, tmp_path) -> None:
    """The run completes after the lease expires; the completed step ran once."""
    ledger = tmp_path / "ledger"
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "before",
                    "action": "test.ledger_append",
                    "params": {"ledger": str(ledger), "line": "before"},
                },
                {
                    "id": "slow",
                    "action": "test.slow_first",
                    "params": {"ledger": str(ledger)},
                    "retry": {"max_attempts": 3, "backoff_s": 0.2},
                },
                {
                    "id": "after",
                    "action": "test.ledger_append",
                    "params": {"ledger": str(ledger), "line": "after"},
                },
            ]
        },
    )
    _kill_mid_step(cluster, run, ledger)

    wait_for(lambda: status(run) in TERMINAL, timeout=60, message="the run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger) == ["before", "start slow 1", "start slow 2", "end slow 2", "after"]
    slow = list(run.steps.filter(node_id="slow").order_by("attempt"))
    assert [s.status for s in slow] == [StepStatus.INTERRUPTED, StepStatus.SUCCEEDED]
    assert run.steps.filter(node_id="before").count() == 1
    assert Event.objects.filter(run=run, type="run.lease_expired").count() == 1
    assert verify_all() == []


def test_an_interrupted_non_idempotent_step_asks_instead_of_rerunning(
    cluster, operator, reviewer, tmp_path
) -> None:
    ledger = tmp_path / "ledger"
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "slow",
                    "action": "test.slow_first_once",
                    "params": {"ledger": str(ledger)},
                },
            ]
        },
    )
    _kill_mid_step(cluster, run, ledger)

    wait_for(
        lambda: status(run) == RunStatus.WAITING,
        timeout=60,
        message="the run to ask about the unknown outcome",
    )
    request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    assert request.kind == RequestKind.UNKNOWN_OUTCOME
    assert lines(ledger) == ["start slow 1"], "the step was not re-run silently"

    approval_decide(request_id=request.pk, actor=reviewer, decision="approve", resolution="retry")
    wait_for(lambda: status(run) == RunStatus.SUCCEEDED, message="the retried run to finish")
    assert lines(ledger) == ["start slow 1", "start slow 2", "end slow 2"]


def test_two_clusters_never_advance_the_same_run(cluster, operator, tmp_path) -> None:
    """Runs queued twice, two clusters: every step's side effect happens once."""
    from workflows.services import enqueue_advance

    ledger = tmp_path / "ledger"
    runs = []
    for number in range(12):
        runs.append(
            run_create(
                mode="autonomous",
                requester=operator,
                plan={
                    "nodes": [
                        {
                            "id": f"s{i}",
                            "action": "test.ledger_append",
                            "params": {"ledger": str(ledger), "line": f"{number}-{i}"},
                        }
                        for i in range(3)
                    ]
                },
            )
        )
    for run in runs:  # a duplicate task per run: both clusters race for each run
        enqueue_advance(run.pk)
    cluster()
    cluster()
    wait_for(
        lambda: Run.objects.filter(status=RunStatus.SUCCEEDED).count() == len(runs),
        timeout=90,
        message="all runs to finish",
    )
    written = lines(ledger)
    assert sorted(written) == sorted(f"{n}-{i}" for n in range(12) for i in range(3))
    assert len(written) == len(set(written)) == 36
    assert verify_all() == []
    assert connection.vendor in ("sqlite", "postgresql")


def test_cancelling_a_running_step_kills_it(cluster, operator, tmp_path) -> None:
    """The worker's heartbeat sees the cancel and kills the action at once."""
    from workflows.services import run_cancel

    ledger = tmp_path / "ledger"
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {"id": "slow", "action": "test.slow_first", "params": {"ledger": str(ledger)}},
                {
                    "id": "never",
                    "action": "test.ledger_append",
                    "params": {"ledger": str(ledger), "line": "never"},
                },
            ]
        },
    )
    cluster()
    wait_for(lambda: "start slow 1" in lines(ledger), message="the slow step to start")
    run_cancel(run_id=run.pk, actor=operator, reason="changed my mind")
    wait_for(
        lambda: run.steps.filter(status=StepStatus.CANCELLED).exists(),
        timeout=15,
        message="the step to be recorded as cancelled",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert lines(ledger) == ["start slow 1"], "the action was killed, not finished"
    assert list(Event.objects.filter(run=run).values_list("type", flat=True))[-2:] == [
        "run.cancelled",
        "step.cancelled",
    ]
    assert verify_all() == []


def test_a_worker_checkpoints_the_chains_so_a_rewound_run_is_named(
    cluster, operator, tmp_path
) -> None:
    """The scheduled task, in a real worker, writes the checkpoint verify_events holds to."""
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from workflows.checkpoints import checkpoints_read
    from workflows.tasks import CHECKPOINT_SCHEDULE, ensure_schedules

    ledger = tmp_path / "ledger"
    cluster()
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "a",
                    "action": "test.ledger_append",
                    "params": {"ledger": str(ledger), "line": "a"},
                }
            ]
        },
    )
    wait_for(lambda: status(run) == RunStatus.SUCCEEDED, message="the run to finish")
    ensure_schedules()
    Schedule.objects.filter(name=CHECKPOINT_SCHEDULE).update(next_run=timezone.now())
    scheduler(broker=get_broker())
    mark = wait_for(
        lambda: checkpoints_read().heads.get(str(run.pk)),
        message="the worker to checkpoint the run",
    )
    assert mark.seq == run.last_seq > 2  # type: ignore[union-attr]
    call_command("verify_events")

    first = Event.objects.get(run=run, seq=1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Event._meta.db_table} WHERE run_id = %s AND seq > 1", [run.pk]
        )
        cursor.execute(
            f"UPDATE {Run._meta.db_table} SET last_seq = 1, last_hash = %s WHERE id = %s",
            [first.hash, run.pk],
        )
    with pytest.raises(
        CommandError, match=f"run {run.pk}: {run.last_seq - 1} events missing after seq 1"
    ):
        call_command("verify_events")
