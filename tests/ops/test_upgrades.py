"""Upgrades: runs started before an upgrade finish on their frozen plan.

A worker of release 1 runs the first step and the run pauses at a gate;
the worker is stopped, the workflow's spec is changed, and a worker of a
later release takes over when the gate is approved:

- release 2 changed the action compatibly (a new optional parameter): the
  run finishes on its frozen plan, the new code running the old parameters;
- release 3 renamed a parameter: the step fails with an error naming the
  fields, nothing runs twice, the chain verifies.

Then migrations: with runs in every state in the database, every migration
newer than the last release's schema (``BASELINE``) is unapplied and applied
again, and the runs are intact and finish afterwards.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.db import connection

from approvals.models import ApprovalRequest, RequestStatus
from approvals.services import approval_decide
from tests.support.fixtures import worker_env
from tests.support.runs import status
from tests.support.waiting import wait_for
from workflows import executor_config
from workflows.events import verify_all
from workflows.models import Event, Run, Step
from workflows.services import run_cancel, run_create, workflow_create, workflow_update
from workflows.states import TERMINAL, RunStatus, StepStatus

pytestmark = pytest.mark.worker

# The schema of the release before issue 17 (main at 522303c): migrations
# after these are what an upgrade applies while runs exist. (An older
# baseline does not hold: unapplying 0005_audit_key drops every event's
# key_id, and the chains then fail to verify. Downgrades lose that.)
BASELINE = [
    ("workflows", "0006_set_self_approval_permission"),
    ("approvals", "0003_scale_indexes"),
    ("accounts", "0002_login_failure_window"),
]


def release_modules(release: int) -> list[str]:
    from django.conf import settings

    base = [m for m in settings.AGENTOS_ACTION_MODULES if "upgrade_v" not in m]
    return [*base, f"tests.support.upgrade_v{release}"]


@pytest.fixture
def release_1(settings):  # type: ignore[no-untyped-def]
    """This process (which validates plans) knows release 1 of the action."""
    settings.AGENTOS_ACTION_MODULES = release_modules(1)
    executor_config.registry.cache_clear()
    yield
    executor_config.registry.cache_clear()


def start_worker(cluster, release: int):  # type: ignore[no-untyped-def]
    env = worker_env()
    env["AGENTOS_ACTION_MODULES"] = ",".join(release_modules(release))
    return cluster(env=env)


def spec(ledger: Path, *, second: str) -> dict:
    node = {"action": "test.versioned"}
    return {
        "slug": "upgrade-demo",
        "title": "Survive an upgrade",
        "mode": "autonomous",
        "plan": {
            "nodes": [
                {**node, "id": "a", "params": {"ledger": str(ledger), "line": "a"}},
                {"id": "gate", "type": "approval", "title": "Go on?"},
                {**node, "id": "b", "params": {"ledger": str(ledger), "line": second}},
            ]
        },
    }


@pytest.mark.parametrize("release", [2, 3], ids=["compatible-change", "renamed-parameter"])
def test_a_run_started_before_an_upgrade_finishes_on_its_frozen_plan(
    cluster, release_1, operator, reviewer, tmp_path, release: int
) -> None:
    ledger = tmp_path / "ledger"
    old = start_worker(cluster, 1)
    workflow = workflow_create(raw_spec=spec(ledger, second="b"), actor=operator)
    run = run_create(workflow=workflow, requester=operator)
    frozen = run.plan
    wait_for(lambda: status(run) == RunStatus.WAITING, message="the run to pause")
    assert ledger.read_text().splitlines() == ["a v1"]

    # The upgrade: the old worker stops, the spec changes, the new worker starts.
    old.signal(signal.SIGTERM, group=True)
    assert old.proc is not None and old.proc.wait(timeout=30) == 0
    workflow_update(workflow=workflow, raw_spec=spec(ledger, second="CHANGED"), actor=operator)
    start_worker(cluster, release)
    request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")

    wait_for(lambda: status(run) in TERMINAL, timeout=60, message="the run to end")
    assert run.plan == frozen
    steps = {s.node_id: s for s in Step.objects.filter(run=run)}
    assert steps["a"].attempt == 1 and steps["a"].status == StepStatus.SUCCEEDED
    if release == 2:
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert ledger.read_text().splitlines() == ["a v1", "b v2"]
    else:
        assert run.status == RunStatus.FAILED
        assert steps["b"].status == StepStatus.FAILED
        assert "invalid params" in steps["b"].error
        assert "line" in steps["b"].error and "text" in steps["b"].error
        assert ledger.read_text().splitlines() == ["a v1"]
    assert verify_all() == []


# --- migrations with runs in every state ---------------------------------------------


def runs_in_every_state(operator, ledger: Path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Create, with a real worker stopped afterwards, one run per status."""

    def plan(*nodes: dict) -> dict:
        return {"nodes": list(nodes)}

    def append(node_id: str) -> dict:
        return {
            "id": node_id,
            "action": "test.ledger_append",
            "params": {"ledger": str(ledger), "line": node_id},
        }

    gate = {"id": "gate", "type": "approval", "title": "Go on?"}
    fail = {"id": "boom", "action": "test.fail", "params": {"message": "expected"}}
    made = {
        "succeeded": run_create(mode="autonomous", requester=operator, plan=plan(append("s1"))),
        "failed": run_create(mode="autonomous", requester=operator, plan=plan(fail)),
        "waiting": run_create(
            mode="autonomous", requester=operator, plan=plan(append("w1"), gate, append("w2"))
        ),
        "cancelled": run_create(
            mode="autonomous", requester=operator, plan=plan(gate, append("c1"))
        ),
    }
    return {name: run.pk for name, run in made.items()}


def snapshot(run_ids: list[int]) -> dict:
    return {
        run.pk: (
            run.status,
            run.plan,
            run.context,
            run.last_seq,
            list(Event.objects.filter(run=run).order_by("seq").values_list("seq", "type", "hash")),
            list(Step.objects.filter(run=run).order_by("pk").values_list("node_id", "status")),
        )
        for run in Run.objects.filter(pk__in=run_ids)
    }


def test_migrations_keep_runs_in_every_state_and_they_finish_after(
    cluster, operator, reviewer, tmp_path
) -> None:
    from django.db.migrations.executor import MigrationExecutor

    ledger = tmp_path / "ledger"
    worker = cluster()
    ids = runs_in_every_state(operator, ledger)
    wait_for(
        lambda: (
            Run.objects.get(pk=ids["succeeded"]).status == RunStatus.SUCCEEDED
            and Run.objects.get(pk=ids["failed"]).status == RunStatus.FAILED
            and Run.objects.get(pk=ids["waiting"]).status == RunStatus.WAITING
            and Run.objects.get(pk=ids["cancelled"]).status == RunStatus.WAITING
        ),
        timeout=60,
        message="the runs to reach their states",
    )
    run_cancel(run_id=ids["cancelled"], actor=operator, reason="not needed")
    worker.signal(signal.SIGTERM)
    assert worker.proc is not None and worker.proc.wait(timeout=30) == 0
    # With no worker running: one run queued, one running with a lease (as a
    # worker stopped mid-step by SIGKILL leaves it).
    for name in ("queued", "running"):
        ids[name] = run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": name,
                        "action": "test.ledger_append",
                        "params": {"ledger": str(ledger), "line": name},
                    }
                ]
            },
        ).pk
    from django.utils import timezone

    Run.objects.filter(pk=ids["running"]).update(
        status=RunStatus.RUNNING, lease_owner="gone:1:dead", lease_expires_at=timezone.now()
    )
    assert {Run.objects.get(pk=pk).status for pk in ids.values()} == {
        "succeeded",
        "failed",
        "waiting",
        "cancelled",
        "queued",
        "running",
    }
    before = snapshot(list(ids.values()))

    executor = MigrationExecutor(connection)
    latest = [key for key in executor.loader.graph.leaf_nodes() if key[0] in dict(BASELINE)]
    newer = [migration for migration, _ in executor.migration_plan(BASELINE)]
    executor.migrate(BASELINE)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(latest)
    print("migrations unapplied and applied again:", [str(m) for m in newer] or "none yet")

    assert snapshot(list(ids.values())) == before
    assert verify_all() == []
    # And the engine carries on with every unfinished run.
    cluster()
    request = ApprovalRequest.objects.get(run_id=ids["waiting"], status=RequestStatus.PENDING)
    approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
    from workflows.tasks import requeue_stale_runs

    # The schedule does this every minute; calling it keeps the test short.
    wait_for(
        lambda: (
            requeue_stale_runs() >= 0
            and all(
                Run.objects.get(pk=ids[name]).status == RunStatus.SUCCEEDED
                for name in ("waiting", "queued", "running")
            )
        ),
        timeout=90,
        every=0.5,
        message="the unfinished runs to finish",
    )
    assert verify_all() == []
