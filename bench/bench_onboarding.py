"""Benchmark the employee-onboarding run end to end in real Chromium.

Serves the portals from a real daphne on a free port, then runs the demo
workflow with the engine in-process (no queue hops), approving the manager
gate at once, so the wall time holds no human waiting. Prints, over the
runs, median and p95 of: the whole run, browser start (Playwright driver +
Chromium launch, per action: on the action's path, and the part a spare
child did ahead of the request), each action's step and within it the sums
of its page loads, form submits (the login's too) and screenshots, the
browser's close, and the engine's own overhead (wall time minus the steps).

Each run starts after --gap seconds idle (default 5): the runner refills
its pre-started browsers (AGENTOS_BROWSER_SPARES) only while idle, as it
would between real onboardings; back-to-back runs would time the refill.

Run: .venv/bin/python bench/bench_onboarding.py [--runs 5] [--gap 5] [--verbose]
It uses a throwaway var/ directory; nothing touches your portal's data.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, configure, pct

configure("embedded")
with socket.socket() as _probe:
    _probe.bind(("127.0.0.1", 0))
    PORT = _probe.getsockname()[1]
os.environ["AGENTOS_PORTAL_BASE_URL"] = f"http://127.0.0.1:{PORT}"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

STARTED = re.compile(r"browser started in (\d+) ms")
AHEAD = re.compile(r"pre-started ahead of the request: driver (\d+) ms, chromium (\d+) ms")
CLOSED = re.compile(r"browser closed in (\d+) ms")
PAGE_WORK = re.compile(r"^page work: (.*)$", re.MULTILINE)
PAGE_ITEM = re.compile(r"^(\S+) .* (\d+) ms$")
VERBOSE = False


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:<40} median {statistics.median(values):7.0f} ms   "
        f"p95 {pct(values, 0.95):7.0f} ms   (n={len(values)})"
    )


def start_daphne() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(PORT),
            "agentos_site.asgi:application",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/portals/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("daphne did not start")


def one_run(index: int) -> dict[str, list[float]]:
    from django.contrib.auth import get_user_model

    from approvals.models import ApprovalRequest, RequestStatus
    from approvals.services import approval_decide
    from workflows.engine import run_advance
    from workflows.models import Workflow
    from workflows.services import run_create

    users = get_user_model().objects
    run = run_create(
        workflow=Workflow.objects.get(slug="employee-onboarding"),
        requester=users.get(username="operator"),
        context={
            "employee_name": f"Bench Person {index}",
            "department": "Engineering",
            "laptop_model": "ThinkPad X1 Carbon",
        },
    )
    t = time.perf_counter()
    run_advance(run_id=run.pk)
    wall = time.perf_counter() - t
    request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    approval_decide(
        request_id=request.pk, actor=users.get(username="reviewer"), decision="approve"
    )
    t = time.perf_counter()
    run_advance(run_id=run.pk)
    wall += time.perf_counter() - t
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    figures: dict[str, list[float]] = {"whole run (no human waiting)": [wall * 1000]}
    steps_ms = 0.0
    for step in run.steps.order_by("id"):
        figures.setdefault(f"step {step.node_id} ({step.action})", []).append(step.duration_ms)
        steps_ms += step.duration_ms
        log = step.evidence.get("log", "")
        match = STARTED.search(log)
        if match:
            figures.setdefault("browser start on the action's path", []).append(
                float(match.group(1))
            )
        match = AHEAD.search(log)
        if match:
            figures.setdefault("  pre-started off the path (driver+chromium)", []).append(
                float(match.group(1)) + float(match.group(2))
            )
        match = CLOSED.search(log)
        if match:
            figures.setdefault("browser close (per action)", []).append(float(match.group(1)))
        match = PAGE_WORK.search(log)
        if match:
            # Per action: page loads, form submits (incl. login) and screenshots.
            spent: dict[str, float] = {}
            for item in match.group(1).split("; "):
                part = PAGE_ITEM.match(item)
                if part:
                    spent[part.group(1)] = spent.get(part.group(1), 0.0) + float(part.group(2))
            for kind, ms in spent.items():
                figures.setdefault(f"  {step.node_id}: {kind} (sum)", []).append(ms)
            if VERBOSE:
                print(f"{step.node_id}: {match.group(1)}")
        if VERBOSE and step.status != "succeeded":
            print(f"{step.node_id}: {step.status}: {step.error}")
    figures["engine overhead (run minus steps)"] = [wall * 1000 - steps_ms]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--gap",
        type=float,
        default=5.0,
        help="seconds idle before each run (the runner refills its "
        "pre-started browsers while idle)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print each action's page work and any failed step"
    )
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    daphne = start_daphne()
    try:
        from workflows import executor_config

        executor_config.runner().start()
        one_run(0)  # warm-up: page caches, first imports
        totals: dict[str, list[float]] = {}
        for index in range(1, args.runs + 1):
            time.sleep(args.gap)
            for key, values in one_run(index).items():
                totals.setdefault(key, []).extend(values)
    finally:
        os.killpg(daphne.pid, 9)
        daphne.wait()
    print(
        f"employee onboarding, {args.runs} runs {args.gap:g} s apart, portals on daphne "
        f":{PORT}, {os.cpu_count()} cores, {settings.AGENTOS_BROWSER_SPARES} pre-started "
        "browsers per runner"
    )
    for key, values in totals.items():
        print(line(key, values))


if __name__ == "__main__":
    main()
