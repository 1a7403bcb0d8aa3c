"""Print every figure the project publishes, for both configurations, in one run.

For the embedded default (SQLite, django-q2's ORM broker, the in-process relay)
and, when PostgreSQL and Redis listen on 127.0.0.1:5432/6379, for PostgreSQL +
Redis (a database, queue name and channel prefix of its own, dropped after):

  - throughput: no-op steps of one task (steps/s) and many runs through
    the portal's worker cluster, `manage.py worker` (runs/s, steps/s),
    beside a bare `python -c pass` and the runner's own round trip
    (bench_engine.py);
  - approve -> resume: the inbox's approve POST -> the next step started,
    and a committed worker event -> a websocket client of daphne
    (bench_live.py);
  - the peer: LangGraph running the same no-op steps, each node in a
    forked subprocess, with its SQLite checkpointer (bench_langgraph.py,
    from the `bench` extra), and the ratio of AgentOS's isolated step to
    LangGraph's in the same run (target: <= 0.4);
  - the scale timings (admin, inbox and API at 100,000 runs / 1,000,000
    events) from bench_scale.py when it is present.

Run: .venv/bin/python bench/run_all.py [--quick] [--skip-scale]
docs/benchmarks.md records the figures and the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, scaled_env, scaled_unavailable

BENCH = ROOT / "bench"


def section(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


EMITTED = Path(tempfile.mkdtemp(prefix="agentos-bench-figures-"))


def emitted(name: str) -> dict | None:
    """Return the figures a script wrote with --emit, or None if it wrote none."""
    path = EMITTED / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ratio(label: str, ours: dict | None, peer: dict | None) -> None:
    """Print AgentOS's isolated step against LangGraph's, measured in this run."""
    if ours is None or peer is None:
        print(f"isolated step / LangGraph ({label}): not measured", flush=True)
        return
    print(
        f"isolated step / LangGraph ({label}): {ours['step_ms']:.2f} / {peer['step_ms']:.2f} ms"
        f" = {ours['step_ms'] / peer['step_ms']:.2f} (target <= 0.4); CPU per step"
        f" {ours['cpu_ms_per_step']:.2f} / {peer['cpu_ms_per_step']:.2f} ms",
        flush=True,
    )
    if "fork_floor_ms" in ours:
        # What an action in a process of its own costs before anything else.
        floor = ours["fork_floor_ms"]
        print(
            f"  a bare fork, pipe and reap alone: {floor:.2f} ms"
            f" = {floor / peer['step_ms']:.2f} of LangGraph's step",
            flush=True,
        )


def run(script: str, args: list[str], env: dict[str, str] | None = None) -> None:
    """Run one benchmark script; its figures print as they come."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args], cwd=ROOT, env={**os.environ, **(env or {})}
    )
    status = "" if result.returncode == 0 else f", FAILED (exit {result.returncode})"
    print(f"  ({script} took {time.monotonic() - started:.0f} s{status})", flush=True)


def configuration(
    label: str, config: str, env: dict[str, str] | None, args: argparse.Namespace
) -> None:
    section(label)
    steps, runs, approvals, events = (100, 20, 10, 50) if args.quick else (200, 60, 30, 200)
    run(
        "bench_engine.py",
        [
            *["--config", config, "--steps", str(steps), "--runs", str(runs)],
            *["--approvals", "0", "--emit", str(EMITTED / f"engine-{config}.json")],
        ],
        env,
    )
    ratio(label.split(":")[0].split(" (")[0], emitted(f"engine-{config}"), emitted("langgraph"))
    live_mode = "embedded" if config == "embedded" else "scaled"
    run(
        "bench_live.py",
        ["--mode", live_mode, "--events", str(events), "--approvals", str(approvals)],
        env,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, smaller scale seed")
    parser.add_argument("--skip-scale", action="store_true", help="leave out bench_scale.py")
    args = parser.parse_args()
    print("# AgentOS benchmarks")
    for key, value in machine().items():
        print(f"- {key}: {value}")
    section("The peer: LangGraph, each node in a subprocess")
    steps = "100" if args.quick else "200"
    run("bench_langgraph.py", ["--steps", steps, "--emit", str(EMITTED / "langgraph.json")])
    configuration("Embedded default: SQLite (WAL), django-q2 ORM broker", "embedded", None, args)
    with scaled_env() as env:
        if env is None:
            section("PostgreSQL + Redis")
            print(f"not available: {scaled_unavailable()}")
        else:
            configuration(
                "PostgreSQL + Redis (django-q2 Redis broker, channels_redis)", "scaled", env, args
            )
    section("Scale: admin, inbox and API at 100,000 runs / 1,000,000 events")
    scale = BENCH / "bench_scale.py"
    if args.skip_scale:
        print("skipped (--skip-scale)")
    elif not scale.exists():
        print("not available: bench/bench_scale.py is not in this checkout")
    else:
        sizes = ["--runs", "10000", "--events", "100000"] if args.quick else []
        with scaled_env() as env:
            # bench_scale.py measures SQLite, and PostgreSQL too when DATABASE_URL
            # names a server it may create its own database on.
            extra = {"DATABASE_URL": env["DATABASE_URL"]} if env else {}
            run("bench_scale.py", sizes, extra)


if __name__ == "__main__":
    main()
