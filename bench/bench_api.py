"""Benchmark the REST API and the audit log on the embedded default (SQLite).

Prints median and p95 of, in-process through Django's full request stack
(middleware, Bearer auth, rate limit, validation, serialisation):
  - POST /api/v1/runs (a new run each time) and with a repeated Idempotency-Key;
  - GET /api/v1/runs/{id} and GET /api/v1/runs?limit=50;
  - GET /api/v1/runs/{id}/events for a run of ~100 events;
  - replaying that run's state at its last event (the time machine);
  - verify_events over the whole log.

Run: .venv/bin/python bench/bench_api.py [--n 200]
It uses a throwaway var/ directory; nothing touches your portal's data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import configure, pct

configure("embedded")
os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:<46} median {statistics.median(values):7.2f} ms   "
        f"p95 {pct(values, 0.95):7.2f} ms   (n={len(values)})"
    )


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    n = parser.parse_args().n
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.services import token_create
    from agentos_site.roles import ensure_roles
    from workflows.events import event_append, verify_all
    from workflows.models import Event, Run
    from workflows.replay import state_at
    from workflows.services import lock_run

    groups = ensure_roles()
    user = get_user_model().objects.create_user("bench", password="x")
    user.groups.add(groups["Operators"])
    auth = {"Authorization": f"Bearer {token_create(user=user, name='bench').plain}"}
    client = Client()
    plan = {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]}

    def post(i: int, key: str = "") -> dict:
        headers = {**auth, **({"Idempotency-Key": key} if key else {})}
        response = client.post(
            "/api/v1/runs",
            json.dumps({"plan": plan, "context": {"i": i}}),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code in (200, 201), response.content
        return response.json()

    print(line("POST /runs (new run)", timed(post, n)))
    post(0, "same-key")
    print(
        line(
            "POST /runs (repeated Idempotency-Key, same request)",
            timed(lambda i: post(0, "same-key"), n),
        )
    )
    run_id = Run.objects.order_by("id").first().pk
    print(
        line(
            "GET /runs/{id}",
            timed(lambda i: client.get(f"/api/v1/runs/{run_id}", headers=auth), n),
        )
    )
    print(
        line(
            "GET /runs?limit=50",
            timed(lambda i: client.get("/api/v1/runs?limit=50", headers=auth), n // 2),
        )
    )
    from django.db import transaction

    with transaction.atomic():
        run = lock_run(run_id)
        for k in range(100):
            event_append(run=run, type="bench.note", data={"k": k})
        run.save_state()
    print(
        line(
            "GET /runs/{id}/events (~100 events)",
            timed(
                lambda i: client.get(f"/api/v1/runs/{run_id}/events?limit=500", headers=auth),
                n // 2,
            ),
        )
    )
    run = Run.objects.get(pk=run_id)
    print(
        line(
            "replay: state at the last of ~100 events",
            timed(lambda i: state_at(run, run.last_seq), n // 2),
        )
    )
    total = Event.objects.count()
    print(line(f"verify_events over {total} events", timed(lambda i: verify_all(), 5)))


if __name__ == "__main__":
    main()
