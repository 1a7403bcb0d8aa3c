"""Benchmark the pages people use, on the embedded default (SQLite).

Prints median and p95 render time and the size of:
  - the admin run page and its live fragment (/admin/workflows/run/<id>/live/),
    the fragment being what a watching page fetches after each change, for a
    run with --steps steps (each output a list of 50 file changes) and
    --events events;
  - the inbox list and a request page.

Run: .venv/bin/python bench/bench_pages.py [--n 50] [--steps 40] [--events 400]
It uses a throwaway var/ directory; nothing touches your portal's data.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import configure, show

configure("embedded")
os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def change(i: int) -> dict:
    digest = f"{i:064x}"
    return {
        "op": "move",
        "source": f"file-{i}.pdf",
        "target": f"Documents/file-{i}.pdf",
        "sha256_before": digest,
        "sha256_after": digest,
    }


def measure(client, url: str, n: int) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - t) * 1000)
    return times, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone

    from agentos_site.roles import ensure_roles
    from approvals.models import ApprovalRequest
    from workflows.engine import run_advance
    from workflows.events import event_append
    from workflows.models import Step
    from workflows.services import lock_run, run_create

    groups = ensure_roles()
    users = get_user_model().objects
    admin = users.create_superuser("bench", password="x")
    reviewer = users.create_user("reviewer", password="x")
    reviewer.groups.add(groups["Reviewers"])
    plan = {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "Move {{ count }} files?"},
            *[
                {"id": f"n{i}", "type": "approval", "title": f"Step {i}?"}
                for i in range(args.steps)
            ],
        ]
    }
    run = run_create(plan=plan, mode="autonomous", context={"count": 50}, requester=admin)
    run_advance(run_id=run.pk)
    now = timezone.now()
    for i in range(args.steps):
        Step.objects.create(
            run=run,
            node_id=f"n{i}",
            position=i + 1,
            action="files.organize",
            status="succeeded",
            params={"path": "demo/downloads", "by": "type"},
            output={"dry_run": False, "count": 50, "changes": [change(j) for j in range(50)]},
            idempotency_key=f"k{i}",
            started_at=now,
            finished_at=now,
            duration_ms=12.5,
        )
    with transaction.atomic():
        locked = lock_run(run.pk)
        for k in range(args.events):
            event_append(run=locked, type="bench.note", data={"k": k, "note": "x" * 40})
    request = ApprovalRequest.objects.get(run=run, status="pending")

    client = Client()
    client.force_login(admin)
    label = f"({args.steps} steps x 50 changes, {run.last_seq + args.events} events)"
    for name, url in [
        (f"GET run page {label}", f"/admin/workflows/run/{run.pk}/change/"),
        (f"GET live fragment {label}", f"/admin/workflows/run/{run.pk}/live/"),
    ]:
        times, size = measure(client, url, args.n)
        show(name, times)
        print(f"{'':<52} {size / 1024:.0f} KiB")
    reviewing = Client()
    reviewing.force_login(reviewer)
    for name, url in [
        ("GET /inbox/", "/inbox/"),
        ("GET /inbox/requests/<id>/", f"/inbox/requests/{request.pk}/"),
    ]:
        times, size = measure(reviewing, url, args.n)
        show(name, times)
        print(f"{'':<52} {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
