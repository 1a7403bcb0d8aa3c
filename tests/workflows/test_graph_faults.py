"""kill -9 in the middle of a parallel block and of a map: nothing lost, nothing redone.

Real qclusters run the run; the whole cluster (sentinel, workers, zygotes)
is SIGKILLed while every branch's action is in flight, and again while the
map's items are. A new cluster picks the run up after its lease expires:
the steps that completed are never run again, the interrupted ones are
retried, and every chain verifies.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scale import counts, fire_requeue_schedule, recover
from tests.support.waiting import wait_for
from workflows.events import verify_all
from workflows.models import Run
from workflows.services import run_create
from workflows.states import RunStatus, StepStatus

pytestmark = [pytest.mark.worker]


def _story(run: Run, ledger: Path) -> str:
    """What happened, for a failing test's report."""
    from workflows.models import Event

    run.refresh_from_db()
    events = [f"{e.seq} {e.type} {e.data}"[:300] for e in Event.objects.filter(run=run)]
    return "\n".join([f"run {run.status} at {run.current_node}", *events, *counts(ledger)])


def test_kill_9_mid_parallel_and_mid_map_loses_nothing(cluster, operator, tmp_path) -> None:
    ledger = tmp_path / "ledger"

    def once(node_id: str, line: str) -> dict:
        return {
            "id": node_id,
            "action": "test.ledger_append",
            "params": {"ledger": str(ledger), "line": line},
        }

    def slow(node_id: str) -> dict:
        return {
            "id": node_id,
            "action": "test.slow_first",
            "params": {"ledger": str(ledger), "seconds": 60},
            # An interrupted attempt counts, as at the top of a plan.
            "retry": {"max_attempts": 3, "backoff_s": 0},
        }

    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {"nodes": [once(f"pre{i}", f"pre{i}"), slow(f"slow{i}")]} for i in range(3)
                ],
            },
            {
                "id": "each",
                "type": "map",
                "items": "{{ people }}",
                "as": "person",
                "max_concurrency": 3,
                "nodes": [once("hello", "hello {{ person }}"), slow("work")],
            },
        ]
    }
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan=plan,
        context={"people": ["ada", "bob", "cy"]},
    )
    first = cluster()
    wait_for(
        lambda: sum(n for line, n in counts(ledger).items() if line.startswith("start slow")) == 3,
        timeout=90,
        message="every branch's slow step in flight",
    )
    first.kill()
    second = cluster()

    def map_in_flight() -> bool:
        fire_requeue_schedule()  # as the minute's schedule would, after the lease expires
        return counts(ledger)["start work 1"] == 3

    try:
        wait_for(
            map_in_flight,
            every=1,
            timeout=120,
            message="the map's items in flight after the first kill",
        )
    finally:
        print(_story(run, ledger))
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.current_node == "each"
    second.kill()
    cluster()
    recover([run.pk], timeout=180)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    seen = counts(ledger)
    for i in range(3):
        assert seen[f"pre{i}"] == 1, seen  # completed before the kill: never again
        assert seen[f"end slow{i} 1"] == 0 and seen[f"end slow{i} 2"] == 1, seen
    for name in ("ada", "bob", "cy"):
        assert seen[f"hello {name}"] == 1, seen
    assert seen["end work 1"] == 0
    assert run.steps.filter(status=StepStatus.INTERRUPTED).count() >= 3
    assert verify_all() == []
    assert Run.objects.get(pk=run.pk).context == {"people": ["ada", "bob", "cy"]}


def test_kill_9_mid_nested_block_loses_nothing(cluster, operator, tmp_path) -> None:
    """A parallel block inside a map's body: the cluster dies while all four lanes run."""
    ledger = tmp_path / "ledger"

    def once(node_id: str, line: str) -> dict:
        return {
            "id": node_id,
            "action": "test.ledger_append",
            "params": {"ledger": str(ledger), "line": line},
        }

    def slow(node_id: str) -> dict:
        return {
            "id": node_id,
            "action": "test.slow_first",
            "params": {"ledger": str(ledger), "seconds": 60},
            "retry": {"max_attempts": 3, "backoff_s": 0},
        }

    plan = {
        "nodes": [
            {
                "id": "hires",
                "type": "map",
                "items": "{{ people }}",
                "as": "person",
                "max_concurrency": 2,
                "nodes": [
                    once("hello", "hello {{ person }}"),
                    {
                        "id": "setup",
                        "type": "parallel",
                        "branches": [
                            {"nodes": [slow("hr")]},
                            {"nodes": [once("pre", "pre {{ person }}"), slow("it")]},
                        ],
                    },
                    once("bye", "bye {{ person }}"),
                ],
            },
        ]
    }
    run = run_create(
        mode="autonomous", requester=operator, plan=plan, context={"people": ["ada", "bob"]}
    )
    first = cluster()
    wait_for(
        lambda: counts(ledger)["start hr 1"] == 2 and counts(ledger)["start it 1"] == 2,
        timeout=90,
        message="every nested lane's slow step in flight",
    )
    first.kill()
    cluster()
    try:
        recover([run.pk], timeout=180)
    finally:
        print(_story(run, ledger))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    seen = counts(ledger)
    for name in ("ada", "bob"):
        # Completed before the kill: never again; after it: once.
        assert seen[f"hello {name}"] == 1 and seen[f"pre {name}"] == 1, seen
        assert seen[f"bye {name}"] == 1, seen
    for node in ("hr", "it"):
        assert seen[f"end {node} 1"] == 0 and seen[f"end {node} 2"] == 2, seen
    interrupted = set(
        run.steps.filter(status=StepStatus.INTERRUPTED).values_list("node_path", flat=True)
    )
    assert interrupted == {f"hires[{i}]/setup/{b}" for i in (0, 1) for b in ("0/hr", "1/it")}
    assert verify_all() == []
