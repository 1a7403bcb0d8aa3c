"""Measure the planner, plan validation and the desktop actions' round trips.

Run: ``.venv/bin/python bench/bench_desktop.py`` from the project root.
Prints median and p95 (ms) of: the built-in planner's draft (parse and
validate), validating a 3-node plan, and one warm-runner round trip each of
files.organize (dry run over 200 files), excel.pivot (1,000 rows) and
api.request against a local HTTP server. Nothing here touches ``var/``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="agentos-bench-"))
os.environ.update(
    {
        "AGENTOS_VAR_DIR": str(TMP / "var"),
        "AGENTOS_FILES_ROOTS": str(TMP / "ws"),
        "DJANGO_SETTINGS_MODULE": "agentos_site.settings",
        "DJANGO_SECRET_KEY": "bench-only",
    }
)
(TMP / "ws").mkdir(parents=True)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from openpyxl import Workbook  # noqa: E402

from executors.base import ActionContext  # noqa: E402
from executors.runner import Runner  # noqa: E402
from workflows import executor_config  # noqa: E402
from workflows.planner import draft  # noqa: E402
from workflows.plans import validate_plan  # noqa: E402


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * len(ordered)) - 1)]


def measure(label: str, fn: Callable[[], object], runs: int) -> None:
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    print(
        f"{label:<44} median {statistics.median(samples):8.2f} ms   "
        f"p95 {percentile(samples, 0.95):8.2f} ms   (n={runs})"
    )


class Health(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        data = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    ws = TMP / "ws"
    downloads = ws / "Downloads"
    downloads.mkdir()
    for i in range(200):
        (downloads / f"file-{i}.{('pdf', 'png', 'xlsx', 'txt')[i % 4]}").write_bytes(b"x" * 100)
    wb = Workbook()
    sheet = wb.active
    sheet.append(["region", "amount"])
    for i in range(1000):
        sheet.append([("North", "South", "East", "West")[i % 4], i])
    wb.save(ws / "sales.xlsx")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"

    plan = draft("organize Downloads by type")["plan"]
    registry, policy = executor_config.registry(), executor_config.policy()
    measure(
        "planner draft (builtin, parse + validate)",
        lambda: draft("pivot sales.xlsx by region summing amount"),
        300,
    )
    measure(
        "validate_plan (3 nodes)",
        lambda: validate_plan(plan, registry=registry, policy=policy),
        300,
    )

    runner = Runner(tuple(settings.AGENTOS_ACTION_MODULES), python_path=(str(ROOT),))
    runner.start()
    evidence = TMP / "evidence"
    evidence.mkdir()
    ctx = ActionContext(
        run_id=1,
        step_id=1,
        node_id="b",
        attempt=1,
        idempotency_key="b",
        evidence_dir=str(evidence),
        files_roots=[str(ws)],
        allowed_hosts=["127.0.0.1"],
    )

    def step(action: str, params: dict) -> Callable[[], object]:
        def go() -> object:
            result = runner.run(action, params, ctx, timeout_s=60)
            assert result.status == "succeeded", result.error
            return result

        return go

    measure(
        "files.organize dry run, 200 files (runner)",
        step("files.organize", {"path": "Downloads", "dry_run": True}),
        30,
    )
    measure(
        "excel.pivot 1,000 rows (runner)",
        step(
            "excel.pivot",
            {
                "path": "sales.xlsx",
                "index": ["region"],
                "values": "amount",
                "output": "out.xlsx",
                "overwrite": True,
            },
        ),
        20,
    )
    measure(
        "api.request to a local server (runner)",
        step("api.request", {"url": url, "expect_status": 200}),
        50,
    )
    runner.close()
    server.shutdown()
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
