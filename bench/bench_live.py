"""Benchmark live status: a committed event -> a websocket client sees it.

Prints median and p95 for
  - event committed by another process (a worker) -> seen by a websocket
    client of daphne, on the embedded default (the web process relays from
    the database) and, when Redis answers on 127.0.0.1:6379, with Redis
    (the committing process publishes directly);
  - approve (the inbox form POST, what the button sends) -> next step
    started, with a real worker cluster (`manage.py worker`), on the
    embedded default.

Run: .venv/bin/python bench/bench_live.py [--events 200] [--approvals 20]
Each mode runs in a child process with a throwaway var/ directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import show  # noqa: E402


def summary(name: str, values_ms: list[float]) -> None:
    show(name, values_ms)


def child_env(mode: str) -> dict[str, str]:
    var = Path(tempfile.mkdtemp(prefix=f"agentos-bench-live-{mode}-"))
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "agentos_site.settings",
            "AGENTOS_VAR_DIR": str(var),
            "AGENTOS_FILES_ROOTS": str(var / "workspace"),
            "DJANGO_SECRET_KEY": "bench-only",
            "PYTHONPATH": str(ROOT),
            "AGENTOS_LOG_LEVEL": "WARNING",
        }
    )
    if mode == "scaled":  # PostgreSQL + Redis from the caller's environment (run_all)
        env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        return env
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if mode == "redis":
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        env["AGENTOS_CHANNEL_PREFIX"] = f"agentos-bench-{uuid.uuid4().hex[:8]}"
    return env


# --- inside a child ------------------------------------------------------------


def start_daphne(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "--fd",
            str(sock.fileno()),
            "agentos_site.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/admin/login/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, url


def session_cookie(username: str, role: str = "Reviewers") -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from agentos_site.roles import ensure_roles

    groups = ensure_roles()
    user, _ = get_user_model().objects.get_or_create(username=username, is_staff=True)
    user.set_password("pw")
    user.save()
    user.groups.add(groups[role])
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def events_to_socket(url: str, cookie: str, count: int) -> list[float]:
    """Commit `count` events here (the "worker") and time their arrival at a socket."""
    import websockets
    from django.db import transaction

    from workflows.events import event_append
    from workflows.models import Run
    from workflows.services import lock_run

    run = Run.objects.create(
        plan={"nodes": [{"id": "x", "type": "approval", "title": "x"}]}, status="waiting"
    )
    committed: dict[int, float] = {}
    seen: dict[int, float] = {}
    ready = threading.Event()

    async def listen() -> None:
        ws_url = url.replace("http", "ws") + f"/ws/runs/{run.pk}/?after=0"
        async with websockets.connect(
            ws_url, additional_headers={"Cookie": f"sessionid={cookie}", "Origin": url}
        ) as ws:
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "caught_up":
                    ready.set()
                elif message["type"] == "event":
                    seen[message["event"]["seq"]] = time.perf_counter()
                    if len(seen) >= count:
                        return

    thread = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
    thread.start()
    ready.wait(30)
    for _ in range(count):
        with transaction.atomic():
            locked = lock_run(run.pk)
            event = event_append(run=locked, type="bench.tick", data={})
        committed[event.seq] = time.perf_counter()
        time.sleep(0.02)
    thread.join(30)
    return [(seen[s] - committed[s]) * 1000 for s in committed if s in seen]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes and their reaped children, from /proc (load-independent)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def server_sessions() -> int | None:
    """PostgreSQL: the sessions (server processes) opened on this database so far."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def approvals_to_step(
    url: str, env: dict[str, str], count: int, web_pid: int
) -> list[tuple[float, float]]:
    """POST approvals through the inbox form; time until the next step starts.

    Also prints the CPU each approval cost the web process (the request's
    page, the POST and its redirect) and the worker's processes (the resume
    and its one no-op step, the action's process included).
    """
    from django.contrib.auth import get_user_model

    from approvals.models import ApprovalRequest
    from workflows.cluster import descendants
    from workflows.models import Event, Run
    from workflows.services import run_create

    operator = get_user_model().objects.create_user("op", password="pw")
    worker = subprocess.Popen(
        # The worker the portal runs (scripts/start.sh), not upstream's qcluster.
        [sys.executable, "manage.py", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    opener.open(url + "/admin/login/").read()
    jar = next(h for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor))
    token = next(c.value for c in jar.cookiejar if c.name == "csrftoken")
    opener.open(
        url + "/admin/login/?next=/inbox/",
        urllib.parse.urlencode(
            {
                "username": "reviewer",
                "password": "pw",
                "csrfmiddlewaretoken": token,
                "next": "/inbox/",
            }
        ).encode(),
    ).read()
    results = []
    # The cluster's processes are up once it took the first task: count from
    # the second approval on.
    cpu_from: tuple[float, float] | None = None
    sessions_from: int | None = None
    try:
        for index in range(count):
            if index == 1:
                tree = [worker.pid, *descendants(worker.pid)]
                cpu_from = (cpu_seconds([web_pid]), cpu_seconds(tree))
                sessions_from = server_sessions()
            run = run_create(
                mode="autonomous",
                requester=operator,
                plan={
                    "nodes": [
                        {"id": "gate", "type": "approval", "title": "Go?"},
                        {
                            "id": "check",
                            "action": "verify.file_absent",
                            "params": {"path": "nothing"},
                        },
                    ]
                },
            )
            while not ApprovalRequest.objects.filter(run=run, status="pending").exists():
                time.sleep(0.01)
            request = ApprovalRequest.objects.get(run=run)
            page = opener.open(f"{url}/inbox/requests/{request.pk}/").read().decode()
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
            body = urllib.parse.urlencode(
                {"csrfmiddlewaretoken": csrf, "decision": "approve", "digest": request.digest}
            ).encode()
            from django.utils import timezone

            clicked = timezone.now()
            opener.open(f"{url}/inbox/requests/{request.pk}/", body).read()
            started = None
            while started is None:
                started = (
                    Event.objects.filter(run=run, type="step.started")
                    .values_list("at", flat=True)
                    .first()
                )
                time.sleep(0.005)
            decided = ApprovalRequest.objects.get(pk=request.pk).decided_at
            results.append(
                (
                    (started - clicked).total_seconds() * 1000,
                    (started - decided).total_seconds() * 1000,
                )
            )
            while Run.objects.get(pk=run.pk).status not in ("succeeded", "failed"):
                time.sleep(0.01)
        if cpu_from is not None:
            tree = [worker.pid, *descendants(worker.pid)]
            web_ms = (cpu_seconds([web_pid]) - cpu_from[0]) * 1000 / (count - 1)
            worker_ms = (cpu_seconds(tree) - cpu_from[1]) * 1000 / (count - 1)
            print(
                f"CPU per approval: web process {web_ms:.1f} ms (page, POST, redirect); "
                f"worker processes {worker_ms:.1f} ms (resume and one no-op step)"
            )
        sessions_to = server_sessions()
        if sessions_from is not None and sessions_to is not None:
            print(
                "PostgreSQL server processes started per approval: "
                f"{(sessions_to - sessions_from) / (count - 1):.2f}"
            )
    finally:
        worker.terminate()
        worker.wait(15)
    return results


def child(mode: str, events: int, approvals: int) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # The watched run has no request, so it is no reviewer's group's run: an
    # auditor watches it (docs/security.md, "Who sees what").
    cookie = session_cookie("auditor", role="Auditors")
    session_cookie("reviewer")  # the person approvals_to_step logs in as
    proc, url = start_daphne(dict(os.environ))
    try:
        label = {"embedded": "embedded relay", "redis": "Redis", "scaled": "PostgreSQL + Redis"}[
            mode
        ]
        summary(
            f"event committed by a worker -> websocket ({label})",
            events_to_socket(url, cookie, events),
        )
        if approvals:
            timed = approvals_to_step(url, dict(os.environ), approvals, proc.pid)
            summary(f"approve (inbox POST) -> next step started ({label})", [t for t, _ in timed])
            # The queue's part: the decision (its decided_at, a moment before
            # its commit queues the task) -> the worker's step.started event.
            summary("  of which: decision saved -> next step started", [h for _, h in timed])
    finally:
        proc.terminate()
        proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--approvals", type=int, default=20)
    parser.add_argument("--child", choices=["embedded", "redis", "scaled"])
    parser.add_argument(
        "--mode",
        choices=["embedded", "redis", "scaled"],
        help="measure one mode (scaled: DATABASE_URL and REDIS_URL as set)",
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events, args.approvals if args.child != "redis" else 0)
        return
    if args.mode:
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                args.mode,
                "--events",
                str(args.events),
                "--approvals",
                str(args.approvals),
            ],
            env=child_env(args.mode),
            check=True,
        )
        return
    modes = ["embedded"]
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        modes.append("redis")
    except OSError:
        print("Redis is not listening on 127.0.0.1:6379: skipping the Redis figures")
    for mode in modes:
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--events",
                str(args.events),
                "--approvals",
                str(args.approvals),
            ],
            env=child_env(mode),
            check=True,
        )


if __name__ == "__main__":
    main()
