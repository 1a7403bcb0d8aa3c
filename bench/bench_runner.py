"""Measure the runner's per-action round trip and CPU, beside a bare Python.

Run: ``.venv/bin/python bench/bench_runner.py`` from the project root.
Prints, for a warm runner (zygote already started) running the built-in
no-op ``verify.value_equals``:

- the median and p95 round trip (wall time, so it moves with the load);
- the CPU per action of the zygote and its children (the spare that ran
  the action, reaped by the zygote: ``/proc/<zygote>/stat`` utime, stime,
  cutime, cstime) and of the calling process (the parent side), which
  depend far less on the load than the wall time does;

once with the built-in modules and no change of user, and once configured
as a worker is (``AGENTOS_ACTION_MODULES`` of the default settings, with
the browser actions, and the action user when run as root); then the
median cost of ``python -c pass`` via ``subprocess.run``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executors.base import ActionContext
from executors.registry import BUILTIN_MODULES
from executors.runner import Runner
from executors.sandbox import Sandbox

RUNS = 200
BARE_RUNS = 30
WARMUP = 20
WORKER_MODULES = (*BUILTIN_MODULES, "executors.actions.browser")
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * len(ordered)) - 1)]


def process_cpu_ms(pid: int) -> tuple[float, int]:
    """Return the CPU of ``pid`` and of its reaped children in ms, and their
    page faults (minor ones: copy-on-write after a fork is most of them)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # minflt, cminflt are fields 10 and 12 (1-based) of the line; utime,
    # stime, cutime, cstime fields 14-17.
    faults = int(fields[7]) + int(fields[9])
    return sum(int(value) for value in fields[11:15]) * TICK_MS, faults


def zygotes_cpu_ms(pids: list[int]) -> tuple[float, int]:
    """Return ``process_cpu_ms`` summed over ``pids``."""
    figures = [process_cpu_ms(pid) for pid in pids]
    return sum(cpu for cpu, _ in figures), sum(faults for _, faults in figures)


def own_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def bench_runner(runner: Runner, runs: int) -> tuple[list[float], float, float, float, float]:
    """Return round trips in ms, the start-up in ms, CPU ms per action (zygote
    with its children, and this process) and page faults per action (zygote
    with its children)."""
    with tempfile.TemporaryDirectory() as evidence:
        ctx = ActionContext(
            run_id=1,
            step_id=1,
            node_id="bench",
            attempt=1,
            idempotency_key="bench",
            evidence_dir=evidence,
        )
        params = {"value": "ok", "expected": "ok"}
        started = time.perf_counter()
        runner.start()
        startup_ms = (time.perf_counter() - started) * 1000
        for _ in range(WARMUP):
            runner.run("verify.value_equals", params, ctx, timeout_s=30)
        zygote = runner.zygote_pid
        assert zygote is not None
        # Plain actions of light modules run in the light zygote (if any),
        # whose children it reaps: its figures count too.
        zygotes = [zygote, *filter(None, [getattr(runner, "light_zygote_pid", None)])]
        zygote_before, faults_before = zygotes_cpu_ms(zygotes)
        own_before = own_cpu_ms()
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            result = runner.run("verify.value_equals", params, ctx, timeout_s=30)
            samples.append((time.perf_counter() - started) * 1000)
            if result.status != "succeeded":
                raise SystemExit(f"unexpected result: {result}")
        # Let the zygote reap the last child and top its spares up.
        time.sleep(0.2)
        zygote_after, faults_after = zygotes_cpu_ms(zygotes)
        zygote_cpu = (zygote_after - zygote_before) / runs
        faults = (faults_after - faults_before) / runs
        own_cpu = (own_cpu_ms() - own_before) / runs
    runner.close()
    return samples, startup_ms, zygote_cpu, own_cpu, faults


def bench_bare_python() -> list[float]:
    """Return the cost in ms of starting and ending ``python -c pass``."""
    samples = []
    for _ in range(BARE_RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    configurations = {
        "built-in modules, own user": Runner(),
        "as a worker (browser, sandbox)": Runner(WORKER_MODULES, sandbox=Sandbox()),
    }
    for label, runner in configurations.items():
        samples, startup_ms, zygote_cpu, own_cpu, faults = bench_runner(runner, args.runs)
        print(f"{label}:")
        print(f"  zygote start-up (one-off):            {startup_ms:7.1f} ms")
        print(
            f"  verify.value_equals x{args.runs}:  median {statistics.median(samples):6.2f} ms"
            f"  p95 {percentile(samples, 0.95):6.2f} ms"
        )
        print(
            f"  CPU per action: zygote + children {zygote_cpu:5.2f} ms,"
            f" parent {own_cpu:5.2f} ms, total {zygote_cpu + own_cpu:5.2f} ms"
        )
        print(f"  page faults per action (zygote + children): {faults:6.0f}")
    bare = bench_bare_python()
    print(f"python -c pass x{BARE_RUNS}:         median {statistics.median(bare):6.2f} ms")


if __name__ == "__main__":
    main()
