"""Benchmark the admin, the inbox and the runs API at 100,000 runs / 1,000,000 events.

For the embedded default (SQLite in a throwaway var/) and, when DATABASE_URL
points at a PostgreSQL server, for PostgreSQL too (in a database of its own,
created and dropped here), this:
  1. migrates and seeds (bench/seeding.py, as `manage.py seed_scale`); or,
     with --data DIR / --pg-database NAME, reuses the data kept there when
     it matches (bench/kept.py; bench_metrics.py shares it);
  2. requests each page ~20 times through Django's full request stack (test
     client: middleware, session auth, templates) and prints median and p95:
     the runs change list (plain, filtered, searched, a deep page), a run's
     change page (a run of 5,000 events and an ordinary one), the inbox
     (filters, archive, a later page) and GET /api/v1/runs (filters, offset).

Run: .venv/bin/python bench/bench_scale.py [--runs 100000] [--events 1000000] [--n 20]
         [--data /work/benchdata] [--pg-database agentos_bench_keep]
Target: every page at most 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    add_seed_arguments,
    on_each_database,
    pct,
    prepare_seeded,
    seeded_child,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 150.0


def measure(n: int) -> None:
    """Seed (or reuse) this process's database and time every page (the child's job)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from approvals.models import ApprovalRequest
    from workflows.models import Run, Workflow

    runs = int(os.environ["BENCH_RUNS"])
    prepare_seeded()

    User = get_user_model()
    # Kept data already has the admin from an earlier run.
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "a@example.com", None
    )
    reviewer = User.objects.get(username="scale-reviewer-00")
    workflow = Workflow.objects.get(slug="scale-03")
    long_run = Run.objects.order_by("-last_seq").first()
    plain_run = Run.objects.filter(last_seq__lte=12).order_by("-id").first()
    some_id = Run.objects.order_by("id").values_list("id", flat=True)[runs // 2]
    print(
        f"  {Run.objects.count()} runs, {long_run.last_seq} events in run {long_run.pk}, "
        f"{ApprovalRequest.objects.filter(status='pending').count()} pending requests"
    )

    as_admin, as_reviewer = Client(), Client()
    as_admin.force_login(admin)
    as_reviewer.force_login(reviewer)
    runs_url = "/admin/workflows/run/"
    pages = [
        ("admin: runs", as_admin, runs_url),
        ("admin: runs ?status=waiting", as_admin, runs_url + "?status__exact=waiting"),
        ("admin: runs ?workflow=", as_admin, f"{runs_url}?workflow__id__exact={workflow.pk}"),
        (
            "admin: runs ?status=failed&mode=interactive",
            as_admin,
            runs_url + "?status__exact=failed&mode__exact=interactive",
        ),
        ("admin: runs page 150", as_admin, runs_url + "?p=150"),
        ("admin: runs search workflow slug", as_admin, runs_url + "?q=scale-03"),
        ("admin: runs search requester", as_admin, runs_url + "?q=requester-05"),
        ("admin: runs search id", as_admin, f"{runs_url}?q={some_id}"),
        ("admin: runs search (no match)", as_admin, runs_url + "?q=nosuchthing"),
        (
            f"admin: run page ({long_run.last_seq} events)",
            as_admin,
            f"{runs_url}{long_run.pk}/change/",
        ),
        (
            "admin: run page, older events",
            as_admin,
            f"{runs_url}{long_run.pk}/change/?events_upto=2500",
        ),
        (
            f"admin: run page ({plain_run.last_seq} events)",
            as_admin,
            f"{runs_url}{plain_run.pk}/change/",
        ),
        ("inbox (reviewer)", as_reviewer, "/inbox/"),
        ("inbox ?workflow=", as_reviewer, "/inbox/?workflow=scale-03"),
        ("inbox ?kind=approval&overdue=1", as_reviewer, "/inbox/?kind=approval&overdue=1"),
        ("inbox ?scope=mine", as_reviewer, "/inbox/?scope=mine"),
        ("inbox ?archive=1", as_reviewer, "/inbox/?archive=1"),
        ("inbox page 40", as_reviewer, "/inbox/?page=40"),
        ("inbox (superuser)", as_admin, "/inbox/"),
        ("api: GET /runs", as_admin, "/api/v1/runs"),
        ("api: GET /runs?status=waiting", as_admin, "/api/v1/runs?status=waiting"),
        ("api: GET /runs?workflow=", as_admin, "/api/v1/runs?workflow=scale-03"),
        (
            "api: GET /runs?status=failed&workflow=",
            as_admin,
            "/api/v1/runs?status=failed&workflow=scale-03",
        ),
        ("api: GET /runs?offset=5000", as_admin, "/api/v1/runs?offset=5000"),
        ("api: GET /runs?limit=500", as_admin, "/api/v1/runs?limit=500"),
    ]
    missed = []
    for label, client, url in pages:
        for _ in range(2):  # warm the caches and the connection
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        median, p95 = statistics.median(times), pct(times, 0.95)
        flag = (
            ""
            if median <= TARGET_MS
            else f"   MISSES {TARGET_MS:.0f} ms by {median - TARGET_MS:.0f} ms"
        )
        if flag:
            missed.append(label)
        print(f"  {label:<46} median {median:7.1f} ms   p95 {p95:7.1f} ms{flag}")
    print(f"  {len(pages) - len(missed)} of {len(pages)} pages within {TARGET_MS:.0f} ms (median)")


def run_child(label: str, database_url: str | None, args: argparse.Namespace) -> int:
    return seeded_child(
        __file__,
        ["--n", str(args.n)],
        label=label,
        database_url=database_url,
        args=args,
        env={"AGENTOS_API_RATE_LIMIT": "0"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_seed_arguments(parser)
    parser.add_argument("--n", type=int, default=20, help="requests per page")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        measure(args.n)
        return
    status = on_each_database(
        lambda label, url: run_child(label, url, args),
        name="agentos_bench_scale",
        sqlite_only=args.sqlite_only,
        postgres_only=args.postgres_only,
        pg_database=args.pg_database,
    )
    sys.exit(status)


if __name__ == "__main__":
    main()
