"""`manage.py worker` stops cleanly however SIGTERM arrives, and drains.

Each test starts the real command in its own process group (as systemd or
a container runtime would) and signals it the way a process manager does:
the main process only (systemd's KillMode=mixed, `docker stop`), or every
process of the group (KillMode=control-group, `kill -- -PGID`, a Ctrl-C in
a terminal). Upstream's qcluster hangs for good in the second case.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.executors._procs import descendants, is_gone, read_proc
from tests.support.fixtures import Cluster
from tests.support.runs import status
from tests.support.waiting import wait_for
from workflows.events import verify_all
from workflows.models import Event
from workflows.services import run_create
from workflows.states import TERMINAL, RunStatus, StepStatus

pytestmark = pytest.mark.worker

# A bound on how long a stop may take before the test gives up on it: a
# hang detector, not a speed assertion (bench/bench_stop.py measures).
STOP_BOUND_S = 20.0


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def process_tree(worker: Cluster) -> tuple[list[int], list[str]]:
    """Return every live process under the worker and its zygotes' home folders."""
    assert worker.proc is not None
    pids = descendants(worker.proc.pid)
    homes = []
    for pid in pids:
        try:
            if b"executors.zygote" not in read_proc(pid, "cmdline"):
                continue
            env = read_proc(pid, "environ").split(b"\0")
        except OSError:
            continue
        homes += [item[5:].decode() for item in env if item.startswith(b"HOME=")]
    return pids, homes


def assert_stopped_leaving_nothing(worker: Cluster, pids: list[int], homes: list[str]) -> None:
    assert worker.proc is not None
    try:
        code = worker.proc.wait(timeout=STOP_BOUND_S)
    except Exception:
        pytest.fail(f"the worker did not exit within {STOP_BOUND_S} s:\n{worker.output()[-3000:]}")
    assert code == 0, worker.output()[-3000:]
    wait_for(
        lambda: all(is_gone(pid) for pid in pids),
        timeout=10,
        message="every process of the worker (sentinel, workers, zygotes, actions) to end",
    )
    assert homes, "the worker's zygotes were found"
    assert [home for home in homes if Path(home).exists()] == []


def one_step_plan(ledger: Path) -> dict:
    return {
        "nodes": [
            {
                "id": "a",
                "action": "test.ledger_append",
                "params": {"ledger": str(ledger), "line": "a"},
            }
        ]
    }


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGTERM, True), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm-to-group", "sigterm-to-main", "ctrl-c-to-group"],
)
def test_an_idle_worker_stops_on_a_signal_and_leaves_nothing_behind(
    cluster, operator, tmp_path, signum: int, group: bool
) -> None:
    """No hang, exit 0, no sentinel, worker, zygote or temporary home folder left."""
    ledger = tmp_path / "ledger"
    worker = cluster().wait_running()  # the run's deadline is not the worker's start
    run = run_create(mode="autonomous", requester=operator, plan=one_step_plan(ledger))
    wait_for(lambda: status(run) == RunStatus.SUCCEEDED, message="the run to finish")
    pids, homes = process_tree(worker)

    worker.signal(signum, group=group)

    assert_stopped_leaving_nothing(worker, pids, homes)
    assert "stopped in" in worker.output()


def test_a_draining_worker_finishes_its_step_and_hands_the_run_on(
    cluster, operator, tmp_path
) -> None:
    """The step in flight commits once; the run and a queued one go to another worker."""
    ledger = tmp_path / "ledger"
    one = worker_env_with(AGENTOS_WORKERS="1")
    first = cluster("--drain-s", "60", env=one).wait_running()
    plan = {
        "nodes": [
            {
                "id": "slow",
                "action": "test.sleep",
                "params": {"seconds": 2, "ledger": str(ledger)},
            },
            {
                "id": "b",
                "action": "test.ledger_append",
                "params": {"ledger": str(ledger), "line": "b"},
            },
        ]
    }
    run = run_create(mode="autonomous", requester=operator, plan=plan)
    wait_for(lambda: len(lines(ledger)) == 1, message="the slow step to start")
    # Queued behind it on the one busy worker process: drained, it must not start.
    waiting = run_create(mode="autonomous", requester=operator, plan=one_step_plan(ledger))
    pids, homes = process_tree(first)

    first.signal(signal.SIGTERM, group=True)
    assert_stopped_leaving_nothing(first, pids, homes)

    first_owner = Event.objects.get(run=run, type="run.running").data["worker"]
    requeued = Event.objects.get(run=run, type="run.requeued")
    assert requeued.data == {"reason": "worker draining", "worker": first_owner}
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.lease_owner == ""
    slow = run.steps.get(node_id="slow")
    assert slow.status == StepStatus.SUCCEEDED and slow.attempt == 1
    assert not Event.objects.filter(run=waiting, type="run.running").exists()

    cluster()
    wait_for(lambda: status(run) in TERMINAL and status(waiting) in TERMINAL, timeout=60)
    assert (run.status, waiting.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    key = slow.idempotency_key
    assert sorted(lines(ledger)) == sorted([f"start {key}", f"end {key}", "b", "a"])
    assert run.steps.count() == 2
    assert verify_all() == []


@pytest.mark.parametrize(
    ("drain_s", "signals"), [("1", 1), ("60", 2)], ids=["bound-reached", "signalled-twice"]
)
def test_a_step_longer_than_the_drain_is_cut_and_retried_elsewhere(
    cluster, operator, tmp_path, drain_s: str, signals: int
) -> None:
    """Past the bound (or on a second signal) the action is killed, nothing half-recorded."""
    ledger = tmp_path / "ledger"
    # The deadlines below are about the step, not about a worker starting.
    first = cluster("--drain-s", drain_s).wait_running()
    run = run_create(
        mode="autonomous",
        requester=operator,
        plan={
            "nodes": [
                {
                    "id": "slow",
                    "action": "test.slow_first",
                    "params": {"ledger": str(ledger), "seconds": 600},
                    "retry": {"max_attempts": 2, "backoff_s": 0.1},
                }
            ]
        },
    )
    wait_for(lambda: lines(ledger) == ["start slow 1"], message="the slow step to start")
    pids, homes = process_tree(first)

    first.signal(signal.SIGTERM, group=True)
    if signals == 2:
        # Two signals sent at once reach the process as one (the kernel
        # does not queue them): send the second once the first was seen.
        wait_for(lambda: "draining" in first.output(), message="the drain to begin")
        first.signal(signal.SIGTERM, group=True)
    assert_stopped_leaving_nothing(first, pids, homes)

    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.lease_owner == ""
    requeued = Event.objects.get(run=run, type="run.requeued")
    assert requeued.data["reason"] == "worker stopped: the step was cut at the drain bound"
    # Nothing of the cut attempt was recorded as a result.
    assert [s.status for s in run.steps.all()] == [StepStatus.RUNNING]

    cluster()
    wait_for(lambda: status(run) in TERMINAL, timeout=60, message="the run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert lines(ledger) == ["start slow 1", "start slow 2", "end slow 2"]
    attempts = list(run.steps.order_by("attempt").values_list("status", flat=True))
    assert attempts == [StepStatus.INTERRUPTED, StepStatus.SUCCEEDED]
    assert verify_all() == []


def worker_env_with(**extra: str) -> dict[str, str]:
    from tests.support.fixtures import worker_env

    return {**worker_env(), **extra}


def test_django_q2_signals_fire_in_the_worker_as_under_qcluster(
    cluster, operator, tmp_path
) -> None:
    """post_spawn, pre_execute, post_execute: what heartbeats and metrics hook into."""
    from tests.support.fixtures import worker_env

    log = tmp_path / "signals"
    env = worker_env()
    env["DJANGO_SETTINGS_MODULE"] = "tests.support.q2_signals.settings"
    env["AGENTOS_TEST_SIGNAL_LOG"] = str(log)
    cluster(env=env).wait_running()  # the deadlines below are about the run
    run = run_create(mode="autonomous", requester=operator, plan=one_step_plan(tmp_path / "l"))
    wait_for(lambda: status(run) == RunStatus.SUCCEEDED, message="the run to finish")
    wait_for(lambda: any(x.startswith("post_execute") for x in lines(log)), message="signals")
    names = [line.split()[0] for line in lines(log)]
    from django.conf import settings

    assert names.count("post_spawn") == settings.Q_CLUSTER["workers"]  # one per process
    assert "pre_execute" in names and "post_execute" in names
