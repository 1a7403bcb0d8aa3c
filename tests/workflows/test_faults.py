"""Faults: nothing lost, nothing done twice, every chain verifies afterwards.

SIGKILLed workers and whole clusters during 200 runs; daphne killed and
restarted under connected websocket clients; Redis and PostgreSQL restarted
mid-run (servers of the test's own: the machine's are shared with others).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.support.fixtures import Cluster
from tests.support.live_clients import LiveClients
from tests.support.scale import (
    ON_POSTGRES,
    audit_runs,
    finished,
    recover,
    start_ledger_runs,
)
from tests.support.servers import children
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.worker]

STEPS = 5


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def worker_processes(c: Cluster) -> list[int]:
    """Return a cluster's worker processes that have run an action (they own a zygote)."""
    assert c.proc is not None
    workers = []
    for sentinel in children(c.proc.pid):
        for pid in children(sentinel):
            if any(b"executors.zygote" in _cmdline(z) for z in children(pid)):
                workers.append(pid)
    return workers


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_sigkilled_workers_and_clusters_lose_nothing(
    cluster, operator, tmp_path, monkeypatch
) -> None:
    """200 runs, three clusters; workers and whole clusters are SIGKILLed again and again.

    While a killed cluster's replacement starts, every run's steps wait (a
    hold file): otherwise the two others could finish the work before the
    schedule's later faults, the faster the engine the sooner.
    """
    monkeypatch.setenv("AGENTOS_REQUEUE_AFTER_S", "3")
    ledger, hold = tmp_path / "ledger", tmp_path / "hold"
    clusters = [cluster() for _ in range(3)]
    run_ids = start_ledger_runs(
        200, requester=operator, ledger=ledger, pause_s=0.05, max_attempts=10, hold=hold
    )
    rng = random.Random(20261101)
    kills = {"worker": 0, "cluster": 0}
    for round_ in range(14):
        seen = lines(ledger)
        wait_for(
            lambda seen=seen: lines(ledger) >= seen + 25 or finished(run_ids) == len(run_ids),
            timeout=60,
            message="the runs to make progress between kills",
        )
        if finished(run_ids) == len(run_ids):
            break
        if round_ % 4 == 3:
            index = rng.randrange(len(clusters))
            hold.touch()
            clusters[index].kill()
            clusters[index] = cluster().wait_running()
            hold.unlink()
            kills["cluster"] += 1
            continue
        victims = [pid for c in clusters for pid in worker_processes(c)]
        if victims:
            os.kill(rng.choice(victims), signal.SIGKILL)
            kills["worker"] += 1
    assert kills["worker"] >= 4 and kills["cluster"] >= 2, f"too few faults: {kills}"

    recover(run_ids)
    audit = audit_runs(run_ids, ledger, steps=STEPS)
    assert audit["problems"] == []
    print("sigkill faults:", kills, audit)


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL + Redis pass")
def test_a_redis_restart_mid_run_loses_nothing(cluster, operator, tmp_path, monkeypatch) -> None:
    """The broker's queue is lost with Redis; leases and the schedule recover every run."""
    from django_q.conf import Conf

    from tests.support.servers import RedisServer

    redis = RedisServer(tmp_path / "redis.log").start()
    clusters: list = []
    try:
        monkeypatch.setenv("REDIS_URL", redis.url)  # the clusters' broker and layer
        monkeypatch.setenv("AGENTOS_REQUEUE_AFTER_S", "3")
        monkeypatch.setattr(Conf, "REDIS", redis.url)  # this process enqueues there too
        ledger = tmp_path / "ledger"
        clusters += [cluster(), cluster()]
        run_ids = start_ledger_runs(
            100, requester=operator, ledger=ledger, pause_s=0.05, max_attempts=5
        )
        wait_for(lambda: lines(ledger) >= 100, timeout=120, message="the runs to get going")
        redis.kill()
        at_restart = lines(ledger)
        redis.start()
        wait_for(
            lambda: lines(ledger) > at_restart + 50,
            timeout=120,
            message="the workers to carry on after Redis came back",
        )
        recover(run_ids)
        audit = audit_runs(run_ids, ledger, steps=STEPS)
        assert audit["problems"] == []
        for c in clusters:
            assert c.proc is not None and c.proc.poll() is None, "a cluster died with Redis"
    finally:
        # While their broker is still there: without it a cluster's shutdown
        # waits out its timeouts (~20 s of teardown).
        for c in clusters:
            c.stop()
        redis.stop()


# --- daphne killed under connected websocket clients --------------------------


def test_websocket_clients_catch_up_after_daphne_is_killed(
    cluster, operator, auditor, tmp_path
) -> None:
    """Every client ends with every event of its run exactly once, in order.

    The clients watch as an auditor: the ledger runs have no approval request,
    so they are no reviewer's group's runs (docs/security.md, "Who sees what").
    """
    from django.test import Client

    from tests.support.gates import gate_plan
    from tests.support.live_servers import Daphne
    from workflows.models import Event, Run
    from workflows.services import run_create

    server = Daphne(tmp_path / "daphne.log")
    clients = None
    try:
        ledger = tmp_path / "ledger"
        cluster()
        run_ids = start_ledger_runs(8, requester=operator, ledger=ledger, pause_s=0.5)
        browser = Client()
        browser.force_login(auditor)
        clients = LiveClients(server.port, browser.cookies["sessionid"].value, run_ids)
        wait_for(
            lambda: all(clients.connects.values()) and lines(ledger) >= 4,
            timeout=60,
            message="every client to connect and the runs to start",
        )
        assert finished(run_ids) < len(run_ids), "the runs must still be going"

        server.restart()  # SIGKILL, then a new daphne on the same listening socket
        wait_for(
            lambda: clients.connects["inbox"] >= 2,
            timeout=60,
            message="the inbox client to reconnect",
        )
        gated = run_create(
            plan=gate_plan(str(ledger)),
            mode="autonomous",
            context={"line": "x"},
            requester=operator,
        )
        wait_for(
            lambda: any(
                m.get("event_type") == "run.paused" and m.get("run") == gated.pk
                for m in clients.inbox
            ),
            timeout=60,
            message="the inbox to hear of a request opened after the restart",
        )
        wait_for(
            lambda: clients.done == set(run_ids),
            timeout=120,
            message="every client to see its run finish",
        )
    finally:
        if clients is not None:
            clients.stop()
        server.stop()

    for run_id in run_ids:
        run = Run.objects.get(pk=run_id)
        assert run.status == "succeeded", run.error
        assert clients.seqs[run_id] == list(range(1, run.last_seq + 1)), run_id
        assert Event.objects.filter(run_id=run_id).count() == run.last_seq
    assert sum(1 for n in clients.connects.values() if n >= 2) >= 1, clients.connects
    assert audit_runs(run_ids, ledger, steps=STEPS)["problems"] == []


# --- PostgreSQL restarted mid-run ----------------------------------------------


def probe(env: dict[str, str], call: str) -> object:
    """Run a tests.support.probe function in a process of its own; return its JSON."""
    import json
    import subprocess
    import sys

    from tests.support.fixtures import ROOT

    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "shell",
            "-c",
            f"from tests.support.probe import *; {call}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL + Redis pass")
def test_a_postgres_restart_mid_run_loses_nothing(tmp_path) -> None:
    """Workers reconnect and carry on; runs finish; chains verify on the restarted server."""
    import json
    import subprocess
    import sys

    from tests.support.fixtures import ROOT, worker_env
    from tests.support.servers import PostgresServer, RedisServer

    pg = PostgresServer()
    redis = RedisServer(tmp_path / "redis.log")
    clusters: list[Cluster] = []
    try:
        pg.start().create_database()
        redis.start()
        env = worker_env() | {
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis.url,
            "AGENTOS_REQUEUE_AFTER_S": "3",
        }
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        ledger, ids_file = tmp_path / "ledger", tmp_path / "runs.json"
        run_ids = probe(env, f"create(100, {str(ledger)!r}, 0.05, 5)")
        assert isinstance(run_ids, list) and len(run_ids) == 100
        ids_file.write_text(json.dumps(run_ids))
        clusters = [Cluster(tmp_path / f"qcluster-{i}.log", env).start() for i in range(2)]
        wait_for(lambda: lines(ledger) >= 100, timeout=120, message="the runs to get going")

        pg.stop("fast")  # every session is cut, as in a restart
        at_restart = lines(ledger)
        pg.start()
        wait_for(
            lambda: lines(ledger) > at_restart + 50,
            timeout=120,
            message="the workers to carry on after PostgreSQL came back",
        )
        deadline = time.monotonic() + 180
        while probe(env, f"finished({str(ids_file)!r})") < len(run_ids):
            assert time.monotonic() < deadline, "runs never finished after the restart"
            probe(env, "fire()")
        audit = probe(env, f"audit({str(ids_file)!r}, {str(ledger)!r})")
        assert isinstance(audit, dict) and audit["problems"] == []
        for c in clusters:
            assert c.proc is not None and c.proc.poll() is None, c.output()[-3000:]
        print("postgres restart:", audit)
    finally:
        for c in clusters:
            c.stop()
        redis.stop()
        pg.remove()
