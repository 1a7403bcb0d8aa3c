"""Take screenshots of the main pages into docs/screenshots/ (see scripts/screenshots.sh).

Runs against a throw-away SQLite database and workspace: seeds the demo,
runs three demo workflows for real (their file actions in subprocesses, the
engine in this process), serves the site with daphne on a free port and
photographs each page in Chromium at 1280 and 390 px wide.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("AGENTOS_SCREENSHOTS_DIR", ROOT / "docs" / "screenshots"))
WIDTHS = {"desktop": 1280, "phone": 390}
PASSWORD = "screenshots"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_runs() -> dict[str, int]:
    """Return run ids in the states worth showing, made by the real engine."""
    from django.contrib.auth import get_user_model

    from approvals.models import ApprovalRequest
    from approvals.services import approval_decide
    from workflows.engine import run_advance
    from workflows.models import Workflow
    from workflows.services import run_create

    users = get_user_model().objects
    operator, reviewer = users.get(username="operator"), users.get(username="reviewer")

    def start(slug: str, context: dict) -> int:
        run = run_create(
            workflow=Workflow.objects.get(slug=slug), context=context, requester=operator
        )
        run_advance(run_id=run.pk)
        return run.pk

    def decide(run_id: int, decision: str, comment: str = "") -> None:
        """Decide every request the run asks for, until it ends."""
        while item := ApprovalRequest.objects.filter(run_id=run_id, status="pending").first():
            approval_decide(request_id=item.pk, actor=reviewer, decision=decision, comment=comment)
            run_advance(run_id=run_id)

    done = start("organize-downloads", {"folder": "demo/downloads", "by": "type"})
    decide(done, "approve")
    waiting = start("invoice-filing", {"inbox": "demo/inbox", "archive": "demo/archive"})
    rejected = start("organize-downloads", {"folder": "demo", "by": "date"})
    decide(rejected, "reject", "Not the whole demo folder, please.")
    return {"succeeded": done, "waiting": waiting, "rejected": rejected}


def shoot(base: str, runs: dict[str, int], request_id: int, decided_id: int) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from workflows.models import Workflow

    editor = Workflow.objects.get(slug="purchase-approval").pk

    pages = [
        ("inbox", "reviewer", "/inbox/"),
        ("request", "reviewer", f"/inbox/requests/{request_id}/"),
        ("request-decided", "reviewer", f"/inbox/requests/{decided_id}/"),
        ("admin-request", "admin", f"/admin/approvals/approvalrequest/{request_id}/change/"),
        ("run-waiting", "admin", f"/admin/workflows/run/{runs['waiting']}/change/"),
        ("run-succeeded", "admin", f"/admin/workflows/run/{runs['succeeded']}/change/"),
        ("run-rejected", "admin", f"/admin/workflows/run/{runs['rejected']}/change/"),
        ("run-list", "admin", "/admin/workflows/run/"),
        ("workflow-editor", "admin", f"/admin/workflows/workflow/{editor}/change/"),
        ("admin-index", "admin", "/admin/"),
    ]
    executable = os.environ.get("AGENTOS_BROWSER_EXECUTABLE", "/usr/bin/chromium")
    written = []
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable)
        for user in ("reviewer", "admin"):
            for label, width in WIDTHS.items():
                context = browser.new_context(
                    base_url=base, viewport={"width": width, "height": 900}
                )
                page = context.new_page()
                page.goto("/admin/login/")
                page.fill("#id_username", user)
                page.fill("#id_password", PASSWORD)
                page.click("input[type=submit]")
                page.wait_for_load_state()
                for name, who, path in pages:
                    if who != user:
                        continue
                    page.goto(path)
                    page.wait_for_load_state("networkidle")
                    if name == "workflow-editor":  # the picture redrawn from the editor
                        page.wait_for_selector("#spec-picture[data-checked]")
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    if wide > width:
                        print(f"warning: {path} is {wide} px wide at {width} px", file=sys.stderr)
                    target = OUT / f"{name}-{label}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                context.close()
        browser.close()
    return written


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos_site.settings")
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", password=PASSWORD, verbosity=0)
    runs = make_runs()
    from approvals.models import ApprovalRequest

    request_id = ApprovalRequest.objects.get(run_id=runs["waiting"], status="pending").pk
    decided_id = ApprovalRequest.objects.filter(run_id=runs["succeeded"]).first().pk
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "agentos_site.asgi:application",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        for path in shoot(f"http://127.0.0.1:{port}", runs, request_id, decided_id):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
