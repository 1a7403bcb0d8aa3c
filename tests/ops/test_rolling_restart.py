"""A rolling restart under load loses nothing and repeats nothing.

Runs in flight on two workers (`manage.py worker`) and two web processes
(`python -m agentos_site.web`) with websocket clients following every run
and the inbox. Each worker is stopped in turn with SIGTERM (it drains and
hands its runs on) and replaced, then each web process (it closes its
sockets with 1012 and a new one serves the same listening socket). In the
end every run succeeded, each step ran exactly once (a ledger outside the
database, the steps and the events agree), no run had to wait for a lease
to expire, and every client saw every event of its run once, in order.

Runs in the PostgreSQL + Redis pass (workers publish to Redis, the broker
is Redis). It also passed on the embedded default (the web processes relay
events from the database), where it is skipped to keep that pass short.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import ROOT, worker_env
from tests.support.live_clients import LiveClients
from tests.support.scale import ON_POSTGRES, audit_runs, finished, start_ledger_runs
from tests.support.waiting import wait_for
from workflows.models import Event, Run, Step
from workflows.states import StepStatus

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL + Redis pass"),
]

STEPS = 5
RUNS = 24


class Web:
    """`python -m agentos_site.web` on a listening socket the test holds across restarts."""

    def __init__(self, log: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.log_path = log
        self.log = open(log, "ab")
        self.restarts: list[int] = []
        self._spawn()

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentos_site.web", "--fd", str(self.sock.fileno())],
            cwd=ROOT,
            env=worker_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(self.sock.fileno(),),
            start_new_session=True,
        )

    def restart(self) -> None:
        """Stop it as its unit does (SIGTERM), then serve the same socket from a new one."""
        self.proc.send_signal(signal.SIGTERM)
        self.restarts.append(self.proc.wait(timeout=30))
        self._spawn()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.sock.close()
        self.log.close()


def progress(ledger: Path) -> int:
    return len(ledger.read_text().splitlines()) if ledger.exists() else 0


def test_restarting_each_worker_then_each_web_process_loses_nothing(
    cluster, operator, auditor, tmp_path
) -> None:
    from django.test import Client

    ledger = tmp_path / "ledger"
    workers = [cluster(), cluster()]
    webs = [Web(tmp_path / "web-0.log"), Web(tmp_path / "web-1.log")]
    clients: list[LiveClients] = []
    try:
        run_ids = start_ledger_runs(RUNS, requester=operator, ledger=ledger, pause_s=0.25)
        browser = Client()
        browser.force_login(auditor)
        cookie = browser.cookies["sessionid"].value
        half = len(run_ids) // 2
        clients = [
            LiveClients(webs[0].port, cookie, run_ids[:half]),
            LiveClients(webs[1].port, cookie, run_ids[half:]),
        ]
        wait_for(
            lambda: all(all(c.connects.values()) for c in clients),
            timeout=60,
            message="every client to connect",
        )

        def restart_when_busy(restart) -> None:  # type: ignore[no-untyped-def]
            seen = progress(ledger)
            wait_for(lambda: progress(ledger) >= seen + 4, timeout=60, message="progress")
            assert finished(run_ids) < len(run_ids), "runs must be in flight"
            restart()

        for index in range(len(workers)):

            def replace_worker(index: int = index) -> None:
                workers[index].signal(signal.SIGTERM)
                assert workers[index].proc is not None
                assert workers[index].proc.wait(timeout=30) == 0, workers[index].output()
                workers[index] = cluster()

            restart_when_busy(replace_worker)
        for web in webs:
            restart_when_busy(web.restart)

        wait_for(
            lambda: all(c.done == set(c.seqs) for c in clients),
            timeout=180,
            message="every client to see its run finish",
        )
    finally:
        for c in clients:
            c.stop()
        for web in webs:
            web.stop()

    assert [web.restarts for web in webs] == [[0], [0]]
    for c in clients:
        for run_id, seqs in c.seqs.items():
            run = Run.objects.get(pk=run_id)
            assert seqs == list(range(1, run.last_seq + 1)), run_id
        # Each web restart made its clients reconnect and catch up.
        assert c.connects["inbox"] >= 2, c.connects
    audit = audit_runs(run_ids, ledger, steps=STEPS)
    assert audit["problems"] == []
    # Drained, not crashed: no step was cut or retried, no lease had to expire,
    # and both stopped workers handed runs on.
    assert not Step.objects.filter(run_id__in=run_ids).exclude(status=StepStatus.SUCCEEDED)
    assert not Event.objects.filter(run_id__in=run_ids, type="run.lease_expired").exists()
    handed_on = Event.objects.filter(
        run_id__in=run_ids, type="run.requeued", data__reason="worker draining"
    )
    print("rolling restart:", audit, "handed on:", handed_on.count())
