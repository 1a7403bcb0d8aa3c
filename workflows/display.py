"""Read-only renderings the admin and the inbox share: JSON, plans, progress, forms."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString

from workflows.plans import PlanError
from workflows.templating import render

HASH_PREFIX = 12


def pretty_json(value: Any) -> str:
    """Return value as indented JSON text (keys sorted, unicode kept)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def compact_json(value: Any) -> str:
    """Return value as one line of JSON; empty text for empty containers."""
    if value in (None, {}, []):
        return ""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def json_block(value: Any) -> SafeString:
    """Return an escaped <pre> block of pretty JSON."""
    return format_html('<pre class="agentos-json">{}</pre>', pretty_json(value))


def plan_error_text(error: PlanError) -> str:
    """Return one plan problem as `node.field: message`."""
    where = ".".join(part for part in (error.node, error.field) if part)
    return f"{where}: {error.message}" if where else error.message


def _retry_text(node: dict[str, Any]) -> str:
    parts = []
    retry = node.get("retry") or {}
    attempts = retry.get("max_attempts")
    if attempts and attempts > 1:
        parts.append(f"{attempts} attempts, backoff {retry.get('backoff_s', 1.0)} s")
    if node.get("timeout_s"):
        parts.append(f"timeout {node['timeout_s']} s")
    return "; ".join(parts)


def plan_rows(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return one display row per node of a plan."""
    rows = []
    nodes = (plan or {}).get("nodes") or []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        kind = node.get("type", "action")
        what = node.get("action", "") if kind == "action" else node.get("title", "")
        if kind == "action" and node.get("title"):
            what = f"{what} ({node['title']})"
        outputs = node.get("outputs") or {}
        if kind == "input":
            outputs = {name: "(asked)" for name in node.get("fields") or {}}
        rows.append(
            {
                "position": index,
                "id": node.get("id", ""),
                "type": kind,
                "what": what,
                "assign_to": node.get("assign_to") or "",
                "params": compact_json(node.get("params")),
                "outputs": ", ".join(f"{key} ← {field}" for key, field in outputs.items()),
                "limits": _retry_text(node),
            }
        )
    return rows


def render_plan(plan: dict[str, Any] | None, *, position: int | None = None) -> SafeString:
    """Return the plan as an HTML table; `position` marks the run's current node."""
    return render_to_string(
        "admin/agentos/plan_table.html", {"rows": plan_rows(plan), "current": position}
    )


def progress_html(position: int, total: int) -> SafeString:
    """Return a progress bar with the `position/total` fraction."""
    done = min(position, total)
    return format_html(
        '<progress value="{}" max="{}"></progress> {}/{}', done, max(total, 1), done, total
    )


# Dark enough for white text (WCAG AA, 4.5:1) in the light and dark themes.
STATUS_COLOURS = {
    "queued": "#555",
    "running": "#1d4f91",
    "waiting": "#8a4600",
    "succeeded": "#1b5e20",
    "failed": "#a31515",
    "cancelled": "#555",
    "pending": "#8a4600",
    "approved": "#1b5e20",
    "rejected": "#a31515",
}
BADGE_STYLE = "color:#fff;background:{};padding:1px 8px;border-radius:9px;white-space:nowrap"


def status_badge(status: str, label: str) -> SafeString:
    """Return a status label as a coloured pill, readable in either theme."""
    colour = STATUS_COLOURS.get(status, "#444")
    return format_html(
        '<strong class="agentos-status status-{}" style="{}">{}</strong>',
        status,
        BADGE_STYLE.format(colour),
        label,
    )


def render_fields(*form_list: forms.Form) -> SafeString:
    """Return forms' fields laid out like admin form rows."""
    return render_to_string("admin/agentos/form_rows.html", {"forms": form_list})


def titled(text: Any, context: dict[str, Any]) -> str:
    """Return a title with the context's values in it; unknown ones stay as written."""
    missing: set[str] = set()
    rendered = render(str(text or ""), context, missing)
    return str(text or "") if missing else str(rendered)
