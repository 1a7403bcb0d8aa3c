"""The peer: LangGraph running the same no-op steps, each node in a subprocess.

A linear LangGraph `StateGraph` of N nodes, compiled with its SQLite
checkpointer (a file, so every step is saved durably, as AgentOS's steps are).
Each node runs the same no-op check AgentOS's benchmark runs
(`value == expected`) in a process of its own: a fork of the running
interpreter (multiprocessing's `fork` context, the cheapest isolation Python
offers, the same kind AgentOS's zygote gives each action), the result coming
back through a pipe. It prints the same figure bench_engine.py prints for
AgentOS: per no-op step, start to next start, and the process's CPU per step.

Run: .venv/bin/python bench/bench_langgraph.py [--steps 200] [--emit FILE]
Needs the `bench` extra (`pip install -e '.[bench]'`); without it, it says so
and exits 3. `--emit` writes the figures as JSON for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import show

try:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
except ImportError:  # the `bench` extra is not installed
    StateGraph = None  # type: ignore[assignment,misc]

FORK = multiprocessing.get_context("fork")


class State(TypedDict):
    done: int


def _check(conn, value: int, expected: int) -> None:  # type: ignore[no-untyped-def]
    """The action, in its own process: the same no-op check as verify.value_equals."""
    conn.send({"status": "succeeded" if value == expected else "failed", "value": value})
    conn.close()


def isolated(value: int, expected: int) -> dict:
    """Run the check in a forked process and return its result."""
    parent, child = FORK.Pipe(duplex=False)
    process = FORK.Process(target=_check, args=(child, value, expected))
    process.start()
    child.close()
    result = parent.recv()
    process.join()
    return result


def build(steps: int, starts: list[float], saver):  # type: ignore[no-untyped-def]
    graph = StateGraph(State)

    def node(i: int):  # type: ignore[no-untyped-def]
        def run(state: State) -> State:
            starts.append(time.perf_counter())
            result = isolated(i, i)
            assert result["status"] == "succeeded", result
            return {"done": state["done"] + 1}

        return run

    for i in range(steps):
        graph.add_node(f"s{i}", node(i))
    graph.add_edge(START, "s0")
    for i in range(steps - 1):
        graph.add_edge(f"s{i}", f"s{i + 1}")
    graph.add_edge(f"s{steps - 1}", END)
    return graph.compile(checkpointer=saver)


def bench(steps: int, thread: str, saver) -> tuple[list[float], float, float]:  # type: ignore[no-untyped-def]
    starts: list[float] = []
    app = build(steps, starts, saver)
    t, cpu = time.perf_counter(), time.process_time()
    out = app.invoke(
        {"done": 0}, {"configurable": {"thread_id": thread}, "recursion_limit": steps + 10}
    )
    total = (time.perf_counter() - t) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    assert out["done"] == steps, out
    gaps = [(b - a) * 1000 for a, b in zip(starts, starts[1:], strict=False)]
    return gaps, total, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--emit", help="write the figures as JSON to this file")
    args = parser.parse_args()
    if StateGraph is None:
        print("LangGraph is not installed: pip install -e '.[bench]'", flush=True)
        sys.exit(3)
    from importlib.metadata import version

    with tempfile.TemporaryDirectory(prefix="agentos-bench-langgraph-") as tmp:
        with SqliteSaver.from_conn_string(str(Path(tmp) / "checkpoints.sqlite")) as saver:
            bench(20, "warm-up", saver)
            gaps, total, cpu_ms = bench(args.steps, "bench", saver)
    print(
        f"LangGraph {version('langgraph')} (SQLite checkpointer, each node forked): "
        f"{args.steps} no-op steps in {total:.0f} ms = {args.steps / total * 1000:.0f} steps/s; "
        f"the process's CPU {cpu_ms / args.steps:.2f} ms/step",
        flush=True,
    )
    show("LangGraph: per no-op step, start to next start", gaps)
    if args.emit:
        Path(args.emit).write_text(
            json.dumps(
                {"step_ms": statistics.median(gaps), "cpu_ms_per_step": cpu_ms / args.steps}
            )
        )


if __name__ == "__main__":
    main()
