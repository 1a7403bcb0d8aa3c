"""Measure the runner's per-step overhead against starting a bare Python.

Run: ``.venv/bin/python bench/bench_runner.py`` from the project root.
Prints the median and p95 round trip of the built-in
``verify.value_equals`` through a warm runner (zygote already started),
beside the median cost of ``python -c pass`` via ``subprocess.run``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executors.base import ActionContext
from executors.runner import Runner

RUNS = 200
BARE_RUNS = 30
WARMUP = 10


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * len(ordered)) - 1)]


def bench_runner() -> tuple[list[float], float]:
    """Return round trips in ms and the zygote start-up cost in ms."""
    runner = Runner()
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
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            result = runner.run("verify.value_equals", params, ctx, timeout_s=30)
            samples.append((time.perf_counter() - started) * 1000)
            if result.status != "succeeded":
                raise SystemExit(f"unexpected result: {result}")
    runner.close()
    return samples, startup_ms


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
    samples, startup_ms = bench_runner()
    bare = bench_bare_python()
    print(f"zygote start-up (one-off):            {startup_ms:7.1f} ms")
    print(
        f"verify.value_equals x{RUNS}:  median {statistics.median(samples):6.2f} ms"
        f"  p95 {percentile(samples, 0.95):6.2f} ms"
    )
    print(f"python -c pass x{BARE_RUNS}:         median {statistics.median(bare):6.2f} ms")


if __name__ == "__main__":
    main()
