"""Benchmark the engine: per-step overhead, throughput, approval -> next step.

Prints:
  - the floors: a bare `python -c pass` subprocess; a bare fork, pipe and
    wait in a process holding what the zygote imports (what any action in a
    process of its own costs at least); and the runner's own round trip for a
    no-op action (a fork from the pre-forked zygote);
  - no-op steps advanced by one task in-process: steps/s, the time from one
    step's start to the next, the engine's overhead beside the runner, and
    the engine's CPU time per step;
  - throughput through the portal's worker cluster (2 workers): many runs of 5 no-op
    steps queued at once, in runs/s and steps/s;
  - approval decision -> next step started, through that cluster.

Run: .venv/bin/python bench/bench_engine.py [--steps 200] [--runs 40] [--approvals 30]
     [--config embedded|scaled]
It uses a throwaway var/ directory; nothing touches your portal's data. The
`scaled` configuration expects DATABASE_URL and REDIS_URL (bench/run_all.py
sets them to a database and queue of their own).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, configure, show

_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--steps", type=int, default=200)
_parser.add_argument("--runs", type=int, default=40, help="runs through the worker cluster")
_parser.add_argument("--approvals", type=int, default=30)
_parser.add_argument("--config", choices=["embedded", "scaled"], default="embedded")
_parser.add_argument("--emit", help="write the per-step figures as JSON to this file")
ARGS = _parser.parse_args() if __name__ == "__main__" else None
configure(ARGS.config if ARGS else "embedded")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

VAR = Path(settings.VAR_DIR)


def bench_floor(n: int = 30) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append((time.perf_counter() - t) * 1000)
    return times


# Run in a fresh interpreter holding the zygote's own imports (and so about
# its memory, which a fork's page tables and the child's exit scale with):
# fork, the child writes a result line to a pipe and exits, the parent reads
# it and reaps the child. No sandbox, no supervision, no durable record.
FORK_FLOOR = """
import os, sys, time
import executors.zygote
out = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b'{"status": "succeeded"}')
        os._exit(0)
    os.close(w)
    os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    out.append((time.perf_counter() - t) * 1000)
print(" ".join(f"{x:.4f}" for x in out))
"""


def bench_fork_floor(n: int = 300) -> list[float]:
    """Return a bare fork -> result -> reap's round trips in ms (FORK_FLOOR)."""
    done = subprocess.run(
        [sys.executable, "-c", FORK_FLOOR, str(n)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return [float(x) for x in done.stdout.split()][n // 10 :]  # the first warm up


def bench_runner(n: int = 200) -> list[float]:
    from executors.base import ActionContext
    from workflows import executor_config

    runner = executor_config.runner()
    ctx = ActionContext(
        run_id=0,
        step_id=0,
        node_id="bench",
        attempt=1,
        idempotency_key="b",
        evidence_dir=str(VAR),
        files_roots=[str(VAR)],
        allowed_hosts=[],
        allowed_origins=[],
    )
    times = []
    for i in range(n + 10):
        t = time.perf_counter()
        result = runner.run("verify.value_equals", {"value": i, "expected": i}, ctx, timeout_s=10)
        if i >= 10:  # the first calls start the zygote
            times.append((time.perf_counter() - t) * 1000)
        assert result.status == "succeeded", result
    return times


def noop_plan(steps: int) -> dict:
    return {
        "nodes": [
            {"id": f"s{i}", "action": "verify.value_equals", "params": {"value": i, "expected": i}}
            for i in range(steps)
        ]
    }


def bench_steps(steps: int, *, quiet: bool = False) -> tuple[list[float], float]:
    """Advance one run of `steps` no-op steps in-process.

    Return the start-to-start gaps and the worker's CPU per step (ms).
    """
    from workflows.engine import run_advance
    from workflows.models import Step
    from workflows.services import run_create

    run = run_create(plan=noop_plan(steps), mode="autonomous")
    t, cpu = time.perf_counter(), time.process_time()
    run_advance(run_id=run.pk)
    total = (time.perf_counter() - t) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    started = [s.started_at for s in Step.objects.filter(run=run).order_by("id")]
    gaps = [(b - a).total_seconds() * 1000 for a, b in zip(started, started[1:], strict=False)]
    if not quiet:
        print(
            f"engine, one task in-process: {steps} no-op steps in {total:.0f} ms = "
            f"{steps / total * 1000:.0f} steps/s; the worker's CPU {cpu_ms / steps:.2f} "
            f"ms/step",
            flush=True,
        )
    return gaps, cpu_ms / steps


def start_cluster() -> subprocess.Popen:
    """Start the portal's worker cluster (AGENTOS_WORKERS workers) on this installation.

    `manage.py worker`, as scripts/start.sh runs it: django-q2's cluster with
    this project's sentinel (workflows.cluster), not upstream's `qcluster`.
    """
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "worker"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_cluster(cluster: subprocess.Popen) -> None:
    cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=10)


def bench_cluster(runs: int, steps: int = 5) -> None:
    """Queue `runs` runs of `steps` no-op steps at once; time until all succeeded."""
    from workflows.models import Run
    from workflows.services import run_create

    cluster = start_cluster()
    try:
        warm = [run_create(plan=noop_plan(steps), mode="autonomous") for _ in range(4)]
        _wait(
            lambda: (
                Run.objects.filter(pk__in=[r.pk for r in warm], status="succeeded").count()
                == len(warm)
            ),
            120,
        )
        t0 = time.perf_counter()
        ids = [run_create(plan=noop_plan(steps), mode="autonomous").pk for _ in range(runs)]
        queued = time.perf_counter() - t0
        _wait(
            lambda: (
                Run.objects.filter(pk__in=ids, status__in=["succeeded", "failed"]).count() == runs
            ),
            600,
            every=0.05,
        )
        total = time.perf_counter() - t0
        assert Run.objects.filter(pk__in=ids, status="succeeded").count() == runs
    finally:
        stop_cluster(cluster)
    workers = settings.Q_CLUSTER["workers"]
    print(
        f"cluster (manage.py worker, {workers} workers): {runs} runs x {steps} no-op steps "
        f"in {total:.2f} s "
        f"(queued in {queued:.2f} s) = {runs / total:.1f} runs/s, "
        f"{runs * steps / total:.0f} steps/s",
        flush=True,
    )


def bench_approvals(n: int) -> list[float]:
    """Approve a gate through the service; time until the next step has started."""
    from django.contrib.auth import get_user_model

    from approvals.models import ApprovalRequest
    from approvals.services import approval_decide
    from workflows.models import Event, Run
    from workflows.services import run_create

    users = get_user_model().objects
    reviewer = users.create_superuser("bench-reviewer", password="x")
    # Four-eyes: a run needs a requester other than its reviewer to be decided.
    requester = users.create_user("bench-requester", password="x")
    cluster = start_cluster()
    latencies = []
    try:
        plan = {
            "nodes": [
                {"id": "gate", "type": "approval", "title": "Go?"},
                {
                    "id": "next",
                    "action": "verify.value_equals",
                    "params": {"value": 1, "expected": 1},
                },
            ]
        }
        for _ in range(n + 3):
            run = run_create(plan=plan, mode="autonomous", requester=requester)
            _wait(lambda run=run: Run.objects.get(pk=run.pk).status == "waiting")
            request = ApprovalRequest.objects.get(run=run, status="pending")
            time.sleep(0.05)  # let the worker go idle, as a person's click would find it
            t0 = time.time()
            approval_decide(request_id=request.pk, actor=reviewer, decision="approve")
            _wait(lambda run=run: Event.objects.filter(run=run, type="step.started").exists())
            started = Event.objects.get(run=run, type="step.started").at.timestamp()
            latencies.append((started - t0) * 1000)
            _wait(lambda run=run: Run.objects.get(pk=run.pk).status == "succeeded")
    finally:
        stop_cluster(cluster)
    return latencies[3:]


def _wait(
    predicate,
    timeout: float = 30.0,  # type: ignore[no-untyped-def]
    every: float = 0.002,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark waited too long")
        time.sleep(every)


def main(args: argparse.Namespace) -> None:
    call_command("migrate", verbosity=0)
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = "Redis" if settings.REDIS_URL else "ORM"
    print(
        f"engine benchmark: {db}, django-q2 {broker} broker, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
        flush=True,
    )
    floor = bench_floor()
    show("floor: bare `python -c pass` subprocess", floor)
    fork_floor = bench_fork_floor()
    show("floor: bare fork, pipe, reap (zygote's imports)", fork_floor)
    runner = bench_runner()
    show("runner round trip, no-op action (zygote fork)", runner)
    bench_steps(20, quiet=True)  # warm up
    gaps, cpu_per_step = bench_steps(args.steps)
    show("engine: per no-op step, start to next start", gaps)
    if args.emit:
        Path(args.emit).write_text(
            json.dumps(
                {
                    "step_ms": statistics.median(gaps),
                    "cpu_ms_per_step": cpu_per_step,
                    "fork_floor_ms": statistics.median(fork_floor),
                }
            )
        )
    show(
        "engine overhead per step (minus the runner)",
        [g - statistics.median(runner) for g in gaps],
    )
    if args.runs:
        bench_cluster(args.runs)
    if args.approvals:
        show("approval decision (service) -> next step started", bench_approvals(args.approvals))


if __name__ == "__main__":
    main(ARGS)
