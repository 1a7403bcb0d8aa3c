"""Heartbeats: real qclusters are counted while alive and dropped once killed."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone

from observability.heartbeats import heartbeat_beat, live_processes
from observability.models import ProcessKind, WorkerHeartbeat
from tests.support.fixtures import Cluster, worker_env
from tests.support.waiting import wait_for
from workflows.models import Run
from workflows.states import RunStatus

WORKERS_PER_CLUSTER = 2  # Q_CLUSTER["workers"]


def health_workers() -> int:
    return Client().get("/api/v1/health").json()["workers"]


@pytest.fixture
def beating_cluster(transactional_db, tmp_path, settings):  # type: ignore[no-untyped-def]
    """Start qclusters that beat every 0.5 s; a worker is dead after 3 s of silence.

    The window is a setting of the reader (this process); a minute in
    production, shortened here so the test does not sleep for one.
    """
    settings.AGENTOS_HEARTBEAT_LIVE_S = 3
    started: list[Cluster] = []

    def start() -> Cluster:
        env = worker_env()
        env["AGENTOS_HEARTBEAT_S"] = "0.5"
        c = Cluster(tmp_path / f"qcluster-{len(started)}.log", env=env).start()
        started.append(c)
        return c

    yield start
    for c in started:
        try:
            c.stop()
        except ProcessLookupError:
            pass
        print(f"--- {c.log_path.name} ---\n{c.output()[-3000:]}")


@pytest.mark.worker
def test_health_counts_live_workers_and_a_killed_cluster_disappears(beating_cluster) -> None:
    assert health_workers() == 0
    first = beating_cluster()
    second = beating_cluster()
    wait_for(
        lambda: health_workers() == 2 * WORKERS_PER_CLUSTER,
        timeout=60,
        message="both clusters' workers to beat",
    )
    rows = list(WorkerHeartbeat.objects.filter(kind=ProcessKind.WORKER))
    assert {r.pid for r in rows} and all(r.version for r in rows)
    assert all(r.name.count(":") == 2 for r in rows)  # their lease identity

    first.kill()
    killed_at = time.monotonic()
    wait_for(
        lambda: health_workers() == WORKERS_PER_CLUSTER,
        timeout=60,
        message="the killed cluster's workers to drop out",
    )
    assert time.monotonic() - killed_at < 60
    # The survivors keep beating; the dead rows stay listed, as dead.
    time.sleep(1.5)
    assert health_workers() == WORKERS_PER_CLUSTER
    assert WorkerHeartbeat.objects.filter(kind=ProcessKind.WORKER).count() == 4
    second.stop()


@pytest.mark.django_db
def test_a_beat_inserts_then_updates_and_old_rows_are_pruned(settings) -> None:
    heartbeat_beat(name="h:1:a", kind=ProcessKind.WORKER)
    first = WorkerHeartbeat.objects.get(name="h:1:a")
    heartbeat_beat(name="h:1:a", kind=ProcessKind.WORKER, spares=3)
    again = WorkerHeartbeat.objects.get(name="h:1:a")
    assert again.started_at == first.started_at
    assert again.last_seen >= first.last_seen and again.browser_spares == 3
    WorkerHeartbeat.objects.filter(name="h:1:a").update(
        last_seen=timezone.now() - timezone.timedelta(days=2)
    )
    heartbeat_beat(name="h:2:b", kind=ProcessKind.WEB)
    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["h:2:b"]
    # A web process is not a worker.
    assert live_processes().count() == 0
    assert live_processes(ProcessKind.WEB).count() == 1


@pytest.mark.django_db
def test_runs_held_by_a_dead_worker_are_named(settings, operator) -> None:
    from observability.selectors import runs_held_by_dead_workers

    run = Run.objects.create(
        plan={"nodes": []},
        requester=operator,
        status=RunStatus.RUNNING,
        lease_owner="gone:2:y",
        lease_expires_at=timezone.now(),
    )
    heartbeat_beat(name="alive:1:x", kind=ProcessKind.WORKER)
    assert list(runs_held_by_dead_workers().values_list("pk", flat=True)) == [run.pk]
    Run.objects.filter(pk=run.pk).update(lease_owner="alive:1:x")
    assert not runs_held_by_dead_workers().exists()
