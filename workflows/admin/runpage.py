"""The run page's panel: what the first screen says, and everything below it.

One function builds the panel's context from the database, so the full page
and its live fragment (`/admin/workflows/run/<id>/live/`, fetched when the
event feed says the run changed) always render the same thing: no section
is updated on its own and none can go stale.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

from agentos_site import policy
from workflows.display import HASH_PREFIX, render_plan
from workflows.models import Run, Step
from workflows.picture import child_run_links, render_graph, run_states
from workflows.readable import readable_with_raw
from workflows.selectors import redact

EVENTS_PER_PAGE = 100
MAX_STEPS_SHOWN = 200
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
SHOWN_SUFFIXES = frozenset({".json", ".txt", ".log", ".csv", ".md"})
MAX_SHOWN_BYTES = 64 * 1024
# Rows of each list a step's parameters, output or an event show on the page
# (the raw JSON has them all): the panel is re-fetched after every change.
STEP_ROWS = 20


def _ago(then: datetime, now: datetime) -> str:
    """Return how long ago, as "4 minutes", or "under a minute"."""
    if (now - then).total_seconds() < 60:
        return "under a minute"
    return timesince(then, now, depth=1)


def _who(item: Any) -> str:
    if item.assigned_user_id:
        return item.assigned_user.get_username()
    if item.assigned_group_id:
        return item.assigned_group.name
    return "a reviewer"


def waiting_for(requests: list[Any], now: datetime) -> list[dict[str, Any]]:
    """Return a sentence per pending request: who must act, since when, by when."""
    rows = []
    for item in requests:
        if item.status != "pending":
            continue
        verb = "approve" if item.kind == "approval" else "answer"
        due = ""
        if item.due_at:
            due = (
                f"overdue by {timesince(item.due_at, now)}"
                if item.due_at < now
                else f"due in {timeuntil(item.due_at, now)}"
            )
        rows.append(
            {
                "request": item,
                "who": _who(item),
                "verb": verb,
                "age": _ago(item.created_at, now),
                "due": due,
                "overdue": bool(item.due_at and item.due_at < now),
                "url": reverse("inbox:request", args=[item.pk]),
                "admin_url": reverse("admin:approvals_approvalrequest_change", args=[item.pk]),
            }
        )
    return rows


def _evidence_files(run: Run, step: Step) -> list[dict[str, Any]]:
    files = []
    media = Path(settings.MEDIA_ROOT)
    root = (media / "runs").resolve()
    for index, entry in enumerate((step.evidence or {}).get("files") or []):
        if not isinstance(entry, dict) or not entry.get("path"):
            continue
        name = str(entry.get("name") or Path(entry["path"]).name)
        suffix = Path(name).suffix.lower()
        item = {
            "name": name,
            "sha256": str(entry.get("sha256", "")),
            "bytes": entry.get("bytes"),
            "url": reverse("admin:workflows_run_evidence", args=[run.pk, step.pk, index]),
            "image": suffix in IMAGE_SUFFIXES,
            "text": None,
            "json": None,
        }
        size = entry.get("bytes") or 0
        if suffix in SHOWN_SUFFIXES and isinstance(size, int) and size <= MAX_SHOWN_BYTES:
            target = (media / str(entry["path"])).resolve()
            if target.is_relative_to(root) and target.is_file():
                text = target.read_text(encoding="utf-8", errors="replace")
                try:
                    item["json"] = (
                        readable_with_raw(redact(json.loads(text)), limit=STEP_ROWS)
                        if suffix == ".json"
                        else None
                    )
                except ValueError:
                    item["json"] = None
                if item["json"] is None:
                    item["text"] = redact(text)
        files.append(item)
    return files


def _step_rows(run: Run, steps: list[Step], now: datetime) -> list[dict[str, Any]]:
    starts = [s.started_at for s in steps if s.started_at]
    t0 = min(starts) if starts else now
    t1 = max([s.finished_at or now for s in steps] + [t0])
    span = max((t1 - t0).total_seconds(), 0.001)
    rows = []
    # Long raw JSON is read from the API's run (steps with params and output).
    raw_url = f"/api/v1/runs/{run.pk}"
    for step in steps:
        end = step.finished_at or now
        left = (step.started_at - t0).total_seconds() / span * 100
        width = max((end - step.started_at).total_seconds() / span * 100, 0.5)
        evidence = redact({k: v for k, v in (step.evidence or {}).items() if k != "files"})
        rows.append(
            {
                "step": step,
                "left": f"{min(left, 99.5):.2f}",
                "width": f"{min(width, 100 - min(left, 99.5)):.2f}",
                "files": _evidence_files(run, step),
                "evidence": evidence,
                "error": redact(step.error),
                "params": readable_with_raw(redact(step.params), limit=STEP_ROWS, raw_url=raw_url),
                "output": readable_with_raw(redact(step.output), limit=STEP_ROWS, raw_url=raw_url),
            }
        )
    return rows


def _events_page(run: Run, upto_param: str | None) -> dict[str, Any]:
    # Events by page, newest page first, through the (run, seq) index:
    # `last_seq` says how many there are without counting them.
    last = run.last_seq
    try:
        upto = min(max(int(upto_param if upto_param is not None else last), 0), last)
    except ValueError:
        upto = last
    first = max(upto - EVENTS_PER_PAGE, 0)
    events = list(run.events.filter(seq__gt=first, seq__lte=upto).order_by("seq"))
    return {
        "events": [
            {
                "event": e,
                "data": readable_with_raw(redact(e.data), limit=STEP_ROWS) if e.data else "",
                "hash": e.hash[:HASH_PREFIX],
            }
            for e in events
        ],
        "events_from": first + 1,
        "events_upto": upto,
        "events_total": last,
        "events_older": first if first > 0 else None,
        "events_newer": min(upto + EVENTS_PER_PAGE, last) if upto < last else None,
    }


def run_panel_context(
    request: Any, run: Run, *, can_cancel: bool, forks: SafeString | str
) -> dict[str, Any]:
    """Return what the run page's panel shows, read in a handful of queries."""
    now = timezone.now()
    steps = list(Step.objects.filter(run=run).order_by("id")[: MAX_STEPS_SHOWN + 1])
    requests = list(
        run.approval_requests.select_related(
            "assigned_group", "assigned_user", "decided_by"
        ).order_by("created_at", "id")
    )
    total = len(run.nodes)
    states = run_states(run, steps, requests)
    finished = run.finished_at
    context = redact(run.context)
    lineage = bool(run.parent_id or run.batch_id or run.schedule_id or forks != "—")
    return {
        "run": run,
        "now": now,
        "waiting": waiting_for(requests, now),
        "age": _ago(run.created_at, now),
        "ran_for": timesince(run.started_at, finished or now) if run.started_at else "",
        "steps": _step_rows(run, steps[:MAX_STEPS_SHOWN], now),
        "steps_truncated": len(steps) > MAX_STEPS_SHOWN,
        **_events_page(run, request.GET.get("events_upto")),
        "approval_requests": requests,
        "can_read_log": policy.may_read_system_log(request.user),
        "graph": render_graph(run.plan, states, context, links=child_run_links(run)),
        "plan_table": render_plan(run.plan, position=run.position),
        "context_html": readable_with_raw(context),
        "error": redact(run.error),
        "can_cancel": can_cancel,
        "progress_position": min(run.position, total),
        "progress_total": total,
        "lineage": lineage,
        "forks": forks,
    }
