"""Benchmark stopping: how long a worker or web process takes to exit on SIGTERM.

Prints, for a real `manage.py worker` (2 worker processes, each with a
zygote and a spare browser started by one run beforehand):
  - idle, SIGTERM to the main process / to the whole process group;
  - during a 2 s step, SIGTERM 0.5 s into it (the step ends, the run is
    handed on): exit time, and how many runs were handed on;
  - during a 600 s step with --drain-s 1 (the step is cut at the bound);
  - django-q2's `qcluster`, idle, SIGTERM to the main process (for
    comparison) and to the whole group (it hangs: counted as "still
    running after 10 s", then SIGKILLed);
and `python -m agentos_site.web` idle, SIGTERM.

Run: .venv/bin/python bench/bench_stop.py [--repeat 5] [--idle-only]
It uses a throwaway var/ directory; nothing touches your portal's data.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, configure, listening, show

_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--repeat", type=int, default=5)
_parser.add_argument(
    "--idle-only", action="store_true", help="only the two idle-worker scenarios (quicker)"
)
ARGS = _parser.parse_args() if __name__ == "__main__" else None
configure("embedded")
# The test actions give a step that sleeps (test.sleep, test.slow_first).
os.environ["AGENTOS_ACTION_MODULES"] = (
    "executors.actions.verify,executors.actions.browser,tests.support.actions,"
    "tests.support.engine_actions"
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

HANG_S = 10.0


def start(*command: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("benchmark: timed out waiting")
        time.sleep(0.02)


def run_plan(*nodes: dict):  # type: ignore[no-untyped-def]
    from workflows.services import run_create

    return run_create(plan={"nodes": list(nodes)}, mode="autonomous")


def status(run) -> str:  # type: ignore[no-untyped-def]
    run.refresh_from_db()
    return run.status


def warm(proc: subprocess.Popen) -> None:
    """Run one quick step so the worker's zygotes exist (their stop is measured too)."""
    run = run_plan(
        {"id": "v", "action": "verify.value_equals", "params": {"value": 1, "expected": 1}}
    )
    wait_until(lambda: status(run) == "succeeded")


def stop(proc: subprocess.Popen, *, group: bool, signals: int = 1) -> float | None:
    """Send SIGTERM; return seconds until exit, or None when it hung (then SIGKILL)."""
    t = time.perf_counter()
    for _ in range(signals):
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=HANG_S)
        return time.perf_counter() - t
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return None


def measure(label: str, trial, repeat: int) -> None:  # type: ignore[no-untyped-def]
    times, hung = [], 0
    for _ in range(repeat):
        took = trial()
        if took is None:
            hung += 1
        else:
            times.append(took * 1000)
    if times:
        show(label, times)
    if hung:
        print(f"{label:<52} still running after {HANG_S:.0f} s: {hung} of {repeat}", flush=True)


def idle_worker(group: bool) -> float | None:
    proc = start("manage.py", "worker")
    warm(proc)
    return stop(proc, group=group)


def during_step() -> float | None:
    proc = start("manage.py", "worker")
    warm(proc)
    run = run_plan(
        {"id": "slow", "action": "test.sleep", "params": {"seconds": 2}},
        {"id": "v", "action": "verify.value_equals", "params": {"value": 1, "expected": 1}},
    )
    wait_until(lambda: run.steps.exists())
    time.sleep(0.5)
    return stop(proc, group=True)


def cut_at_bound() -> float | None:
    proc = start("manage.py", "worker", "--drain-s", "1")
    warm(proc)
    run = run_plan({"id": "slow", "action": "test.sleep", "params": {"seconds": 600}})
    wait_until(lambda: run.steps.exists())
    time.sleep(0.5)
    return stop(proc, group=True)


def idle_qcluster(group: bool) -> float | None:
    proc = start("manage.py", "qcluster")
    warm(proc)
    return stop(proc, group=group)


def idle_web() -> float | None:
    from tests.support.servers import free_port

    port = free_port()
    proc = start("-m", "agentos_site.web", "-p", str(port))
    wait_until(lambda: listening(port))
    return stop(proc, group=False)


def main() -> None:
    from workflows.models import Event

    call_command("migrate", verbosity=0)
    n = ARGS.repeat if ARGS else 5
    print(f"stop latency, SIGTERM to exit (2 worker processes; n={n} each)", flush=True)
    measure("worker, idle, SIGTERM to the main process", lambda: idle_worker(False), n)
    measure("worker, idle, SIGTERM to the process group", lambda: idle_worker(True), n)
    if ARGS and ARGS.idle_only:
        return
    measure("worker, 0.5 s into a 2 s step (drains)", during_step, n)
    handed = Event.objects.filter(type="run.requeued", data__reason="worker draining").count()
    print(f"{'runs handed on by draining workers':<52} {handed}", flush=True)
    measure("worker, 600 s step, --drain-s 1 (cut)", cut_at_bound, n)
    measure("qcluster, idle, SIGTERM to the main process", lambda: idle_qcluster(False), n)
    measure("qcluster, idle, SIGTERM to the process group", lambda: idle_qcluster(True), n)
    measure("web (agentos_site.web), idle, SIGTERM", idle_web, n)


if __name__ == "__main__":
    main()
