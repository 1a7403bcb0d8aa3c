"""Benchmark the integrations: actions from other packages, and Slack clicks.

Prints median and p95 of:
  - a fresh interpreter building the registry without and with the entry
    points of `agentos.actions` (what loading installed packages adds to
    every start-up);
  - the runner's round trip (fork from the zygote, run, result) for a
    built-in action and for an installed package's action;
  - a signed Approve click from Slack, in-process through Django's request
    stack: signature, replay store, person lookup (cached after the first),
    the decision, against a local stand-in of Slack's Web API;
  - rendering and posting one request's message to that stand-in.

Needs the example package installed
(`.venv/bin/python -m pip install ./examples/agentos-example-actions`).
Run: .venv/bin/python bench/bench_integrations.py [--n 50]
It uses a throwaway var/ directory; nothing touches your portal's data.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, configure, show

configure("embedded")
os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
SECRET, TOKEN = "bench-signing-secret", "xoxb-bench-token"
os.environ["AGENTOS_SLACK_BOT_TOKEN"] = TOKEN
os.environ["AGENTOS_SLACK_SIGNING_SECRET"] = SECRET

import django  # noqa: E402

BUILD = (
    "from executors.registry import BUILTIN_MODULES, build_registry; "
    "build_registry(BUILTIN_MODULES, plugin_group={group!r})"
)


def start_up(group: str | None, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", BUILD.format(group=group)], cwd=ROOT, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return times


def round_trips(n: int) -> None:
    from executors.base import ActionContext
    from executors.registry import BUILTIN_MODULES, PLUGIN_GROUP
    from executors.runner import Runner

    runner = Runner(BUILTIN_MODULES, python_path=(str(ROOT),), plugin_group=PLUGIN_GROUP)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ActionContext(
            run_id=1, step_id=1, node_id="n", attempt=1, idempotency_key="k", evidence_dir=tmp
        )
        for action, params in (
            ("verify.value_equals", {"value": 1, "expected": 1}),
            ("text.word_count", {"text": "one two three"}),
        ):
            runner.run(action, params, ctx, timeout_s=30)  # warm
            times = []
            for _ in range(n):
                t = time.perf_counter()
                result = runner.run(action, params, ctx, timeout_s=30)
                times.append((time.perf_counter() - t) * 1000)
                assert result.status == "succeeded", result
            show(f"runner round trip: {action}", times)
    runner.close()


def slack_clicks(n: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from agentos_site.roles import ensure_roles
    from approvals.models import ApprovalRequest
    from approvals.slack.services import message_sync
    from tests.support.slack import FakeSlack, click, signed_post
    from workflows.engine import run_advance
    from workflows.services import run_create, workflow_create

    call_command("migrate", verbosity=0)
    fake = FakeSlack(TOKEN).start()
    settings.AGENTOS_SLACK_API_URL = fake.url
    groups = ensure_roles()
    users = get_user_model().objects
    operator = users.create_user("op", "op@example.com", "x")
    operator.groups.add(groups["Operators"])
    reviewer = users.create_user("rev", "rev@example.com", "x")
    reviewer.groups.add(groups["Reviewers"])
    for i in range(20):  # other reviewers the lookup may have to ask about
        users.create_user(f"r{i}", f"r{i}@example.com", "x").groups.add(groups["Reviewers"])
    fake.users["rev@example.com"] = "UREV"
    workflow = workflow_create(
        raw_spec={
            "slug": "bench",
            "title": "Bench",
            "mode": "autonomous",
            "slack_channel": "#bench",
            "plan": {"nodes": [{"id": "gate", "type": "approval", "title": "Go?"}]},
        },
        actor=operator,
    )
    posts, clicks = [], []
    client = Client()
    for _ in range(n):
        run = run_create(workflow=workflow, requester=operator)
        run_advance(run_id=run.pk)
        request = ApprovalRequest.objects.get(run=run)
        t = time.perf_counter()
        assert message_sync(request_id=request.pk, post=True) == "synced"
        posts.append((time.perf_counter() - t) * 1000)
        message = fake.of("chat.postMessage")[-1]
        t = time.perf_counter()
        response = signed_post(client, SECRET, click(message, "approve", user="UREV"))
        clicks.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200
        request.refresh_from_db()
        assert request.status == "approved", fake.of("chat.postEphemeral")
    fake.stop()
    show("Slack: render + chat.postMessage (stand-in)", posts)
    show("Slack: first signed Approve click (22 emails looked up)", clicks[:1])
    show("Slack: signed Approve click, person cached", clicks[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    n = parser.parse_args().n
    show("start-up: build the registry, built-ins only", start_up(None, max(5, n // 5)))
    show(
        "start-up: build the registry + agentos.actions",
        start_up("agentos.actions", max(5, n // 5)),
    )
    django.setup()
    round_trips(n)
    slack_clicks(n)


if __name__ == "__main__":
    main()
