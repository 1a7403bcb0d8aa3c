"""Benchmark plans as graphs: a parallel block and a map of 200 ms actions.

Prints, end to end (run created -> run succeeded, one worker in-process,
the default AGENTOS_RUN_PARALLELISM of 4):
  - a parallel block of 4 branches, each one 200 ms action (target <= 450 ms);
  - a map of 20 items, max_concurrency 4, each one 200 ms action
    (target <= 1.3 s; 5 waves of 200 ms are 1.0 s of sleeping);
  - the same 4 actions as a straight line, for comparison (~800 ms + overhead).
The first run of each kind also starts the extra runners (zygotes); it is
reported apart and left out of the median.

Run: .venv/bin/python bench/bench_graph.py [--runs 5]
It uses a throwaway var/ directory and the test suite's `test.sleep` action.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import configure

_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--runs", type=int, default=5)
ARGS = _parser.parse_args() if __name__ == "__main__" else None
configure("embedded")
os.environ["AGENTOS_ACTION_MODULES"] = "executors.actions.verify,tests.support.actions"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

SLEEP = {"action": "test.sleep", "params": {"seconds": 0.2}}


def parallel_plan() -> dict:
    return {
        "nodes": [
            {
                "id": "block",
                "type": "parallel",
                "branches": [{"nodes": [{"id": f"b{i}", **SLEEP}]} for i in range(4)],
            }
        ]
    }


def map_plan() -> dict:
    return {
        "nodes": [
            {
                "id": "each",
                "type": "map",
                "items": "{{ items }}",
                "as": "item",
                "max_concurrency": 4,
                "nodes": [{"id": "work", **SLEEP}],
            }
        ]
    }


def line_plan() -> dict:
    return {"nodes": [{"id": f"s{i}", **SLEEP} for i in range(4)]}


def once(plan: dict, context: dict) -> float:
    from workflows.engine import run_advance
    from workflows.services import run_create

    t = time.perf_counter()
    run = run_create(plan=plan, mode="autonomous", context=context)
    run_advance(run_id=run.pk)
    elapsed = (time.perf_counter() - t) * 1000
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return elapsed


def report(label: str, plan: dict, context: dict, runs: int) -> None:
    first = once(plan, context)
    samples = [once(plan, context) for _ in range(runs)]
    print(
        f"{label:<40} median {statistics.median(samples):7.1f} ms   "
        f"min {min(samples):7.1f}   max {max(samples):7.1f}   (first {first:.1f})"
    )


def main() -> None:
    call_command("migrate", verbosity=0)
    from django.conf import settings

    print(f"AGENTOS_RUN_PARALLELISM={settings.AGENTOS_RUN_PARALLELISM}, load {os.getloadavg()}")
    report("parallel 4 x 200 ms (<= 450 ms)", parallel_plan(), {}, ARGS.runs)
    report("map 20 @ 4 x 200 ms (<= 1300 ms)", map_plan(), {"items": list(range(20))}, ARGS.runs)
    report("straight line 4 x 200 ms (reference)", line_plan(), {}, ARGS.runs)


if __name__ == "__main__":
    main()
