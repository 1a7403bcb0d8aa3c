"""Benchmark the idle footprint: a portal with nothing to do, CPU and memory.

Starts what `scripts/start.sh` starts (daphne through `agentos_site.web`, and
`manage.py worker`, default settings) on a throwaway embedded installation
with the demo seeded, runs one employee onboarding through the worker (three
browser actions, so each worker that ran one has its pre-started browsers),
and then, with nothing left to do, prints:

  - CPU: the processes' user + system time over a window (from /proc, so it
    does not depend on how loaded the machine is), as a share of one core;
  - memory: the processes' PSS (proportional set size: shared pages counted
    once across them) and how many processes, Chromium's among them;
  - the wake-ups: which processes took the CPU time.

It measures right after the onboarding (`just after`) and again once the
pre-started browsers have retired (`idle`, AGENTOS_BROWSER_SPARES_IDLE_S).

Run: .venv/bin/python bench/bench_idle.py [--window 30] [--settle 5] [--skip-run]
It uses a throwaway var/ directory; nothing touches your portal's data.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, configure

_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--window", type=float, default=30.0, help="seconds of CPU sampled")
_parser.add_argument("--settle", type=float, default=5.0, help="seconds before sampling")
_parser.add_argument("--skip-run", action="store_true", help="no onboarding first")
ARGS = _parser.parse_args() if __name__ == "__main__" else None
configure("embedded")
with socket.socket() as _probe:
    _probe.bind(("127.0.0.1", 0))
    PORT = _probe.getsockname()[1]
os.environ["AGENTOS_PORTAL_BASE_URL"] = f"http://127.0.0.1:{PORT}"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
RETIRE_S = getattr(settings, "AGENTOS_BROWSER_SPARES_IDLE_S", 0.0)


def start(*command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def tree(*roots: int) -> list[int]:
    """Return `roots` and all their descendants (from /proc)."""
    from workflows.cluster import descendants

    found = []
    for root in roots:
        found += [root, *descendants(root)]
    return found


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def name(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    first = os.path.basename(cmd[0].decode(errors="replace")) if cmd else "?"
    if "chrom" in first or "headless_shell" in first:
        return "chromium"
    if first.startswith("python") and len(cmd) > 1:
        args = [a.decode(errors="replace") for a in cmd[1:] if a]
        return "python " + " ".join(os.path.basename(a) for a in args[:2])
    return first


def pss_kib(pid: int) -> int:
    try:
        for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if row.startswith("Pss:"):
                return int(row.split()[1])
    except OSError:
        pass
    return 0


def measure(label: str, roots: list[int], window: float) -> None:
    pids = tree(*roots)
    before = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(window)
    pids = tree(*roots)
    spent: Counter[str] = Counter()
    per_pid: Counter[int] = Counter()
    for pid in pids:
        if pid in before:  # one that started in the window is not idling
            per_pid[pid] = cpu_ticks(pid) - before[pid]
            spent[name(pid)] += per_pid[pid]
    total = sum(spent.values()) / TICK
    pss = sum(pss_kib(pid) for pid in pids) / 1024
    chromium = sum(1 for pid in pids if name(pid) == "chromium")
    load = os.getloadavg()
    print(
        f"{label}: CPU {total / window * 100:.2f}% of a core over {window:.0f} s; "
        f"PSS {pss:.0f} MB in {len(pids)} processes ({chromium} Chromium); "
        f"load average {load[0]:.1f}",
        flush=True,
    )
    for who, ticks in spent.most_common(6):
        if ticks:
            print(f"    {who:<50} {ticks / TICK / window * 100:6.2f}% of a core", flush=True)
    for pid, ticks in per_pid.most_common(6):
        if ticks:
            print(
                f"      pid {pid:<7} {name(pid):<38} {ticks / TICK / window * 100:6.2f}%",
                flush=True,
            )


def onboarding() -> None:
    """Run one employee onboarding through the worker, approving its gate."""
    from django.contrib.auth import get_user_model

    from approvals.models import ApprovalRequest, RequestStatus
    from approvals.services import approval_decide
    from workflows.models import Run, Workflow
    from workflows.services import run_create

    users = get_user_model().objects
    run = run_create(
        workflow=Workflow.objects.get(slug="employee-onboarding"),
        requester=users.get(username="operator"),
        context={
            "employee_name": "Idle Bench",
            "department": "Engineering",
            "laptop_model": "ThinkPad X1 Carbon",
        },
    )
    wait(lambda: ApprovalRequest.objects.filter(run=run, status=RequestStatus.PENDING).exists())
    request = ApprovalRequest.objects.get(run=run, status=RequestStatus.PENDING)
    approval_decide(
        request_id=request.pk, actor=users.get(username="reviewer"), decision="approve"
    )
    wait(lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed"), 120)
    status = Run.objects.get(pk=run.pk).status
    if status != "succeeded":
        raise SystemExit(f"the onboarding run {status}")


def wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("benchmark: timed out waiting")
        time.sleep(0.05)


def main(args: argparse.Namespace) -> None:
    call_command("migrate", verbosity=0)
    call_command("seed_demo", password="bench-password", verbosity=0)
    web = start("-m", "agentos_site.web", "-b", "127.0.0.1", "-p", str(PORT))
    worker = start("manage.py", "worker")
    try:
        wait(lambda: _up(f"http://127.0.0.1:{PORT}/portals/"))
        print(
            f"idle footprint: daphne + manage.py worker ({settings.Q_CLUSTER['workers']} "
            f"workers), broker poll {settings.Q_CLUSTER['poll']} s, "
            f"{settings.AGENTOS_BROWSER_SPARES} browser spares, retired after "
            f"{RETIRE_S:.0f} s idle; {os.cpu_count()} cores",
            flush=True,
        )
        if not args.skip_run:
            onboarding()
            time.sleep(args.settle)
            measure("just after an onboarding", [web.pid, worker.pid], args.window)
            if RETIRE_S:
                # Until the pre-started browsers have retired (and been reaped).
                wait(
                    lambda: not any(name(p) == "chromium" for p in tree(web.pid, worker.pid)),
                    RETIRE_S + 180,
                )
            time.sleep(args.settle)
        else:
            time.sleep(args.settle)
        measure("idle", [web.pid, worker.pid], args.window)
    finally:
        for proc in (worker, web):
            proc.send_signal(signal.SIGTERM)
        for proc in (worker, web):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main(ARGS)
