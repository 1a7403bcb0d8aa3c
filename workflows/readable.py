"""Render JSON values (params, outputs, context, evidence) as readable HTML.

A reviewer or an operator should not read Python dicts to understand a
step: mappings become key/value lists, lists of records become tables,
file changes become before → after tables, and SHA-256 digests are
shortened with a copy button. Everything is escaped; nothing is evaluated.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from workflows.display import HASH_PREFIX, pretty_json

MAX_DEPTH = 4
MAX_ROWS = 200
MAX_RAW_CHARS = 8 * 1024
HEX_DIGEST = re.compile(r"^[0-9a-f]{40,128}$")
CHANGE_KEYS = frozenset({"op", "source"})


def short_hash(value: str) -> SafeString:
    """Return a digest shortened to its prefix, with a button that copies it all."""
    return format_html(
        '<span class="agentos-hash"><code>{}…</code>'
        ' <button type="button" class="agentos-copy" data-copy="{}"'
        ' title="Copy the full hash">copy</button></span>',
        value[:HASH_PREFIX],
        value,
    )


def _scalar(value: Any) -> SafeString:
    if value is None:
        return mark_safe('<span class="agentos-none">—</span>')
    if isinstance(value, bool):
        return mark_safe("yes" if value else "no")
    if isinstance(value, str) and HEX_DIGEST.match(value):
        return short_hash(value)
    if isinstance(value, str) and value == "":
        return mark_safe('<span class="agentos-none">(empty)</span>')
    return format_html("{}", value)


def _is_change_list(value: list) -> bool:
    return bool(value) and all(
        isinstance(item, dict) and CHANGE_KEYS <= item.keys() for item in value
    )


def changes_table(changes: list[dict[str, Any]], limit: int = MAX_ROWS) -> SafeString:
    """Return file changes (`op`, `source`, `target`, hashes) as before → after rows."""
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
        (
            (
                change.get("op", ""),
                change.get("source", ""),
                format_html("→ <code>{}</code>", change["target"])
                if change.get("target")
                else mark_safe('<span class="agentos-none">(removed)</span>'),
                _hashes(change),
            )
            for change in changes[:limit]
        ),
    )
    more = _more(len(changes), limit)
    return format_html(
        '<table class="agentos-table agentos-changes"><thead><tr><th>Change</th>'
        "<th>Before</th><th>After</th><th>SHA-256 before → after</th></tr></thead>"
        "<tbody>{}</tbody></table>{}",
        rows,
        more,
    )


def _hashes(change: dict[str, Any]) -> SafeString:
    before, after = change.get("sha256_before") or "", change.get("sha256_after") or ""
    if not before and not after:
        return mark_safe("")
    if before and before == after:
        return format_html("{} (unchanged)", short_hash(before))
    return format_html(
        "{} → {}",
        short_hash(before) if before else "—",
        short_hash(after) if after else "—",
    )


def _more(total: int, limit: int) -> SafeString:
    if total <= limit:
        return mark_safe("")
    return format_html("<p>… and {} more (see the raw JSON).</p>", total - limit)


def _records_table(records: list[dict[str, Any]], depth: int, limit: int) -> SafeString:
    columns: list[str] = []
    for record in records[:limit]:
        for key in record:
            if key not in columns:
                columns.append(key)
    head = format_html_join("", "<th>{}</th>", ((column,) for column in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (
                format_html_join(
                    "",
                    "<td>{}</td>",
                    ((readable(record.get(column), depth + 1, limit),) for column in columns),
                ),
            )
            for record in records[:limit]
        ),
    )
    return format_html(
        '<table class="agentos-table agentos-records"><thead><tr>{}</tr></thead>'
        "<tbody>{}</tbody></table>{}",
        head,
        body,
        _more(len(records), limit),
    )


def readable(value: Any, depth: int = 0, limit: int = MAX_ROWS) -> SafeString:
    """Return value as escaped, readable HTML (lists, tables, short hashes).

    At most `limit` items of each list or mapping are shown; the raw JSON
    (`readable_with_raw`) holds the rest.
    """
    if depth > MAX_DEPTH:
        return format_html("<code>{}</code>", pretty_json(value))
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="agentos-none">(nothing)</span>')
        items = list(value.items())
        rows = format_html_join(
            "",
            "<div><dt>{}</dt><dd>{}</dd></div>",
            ((key, readable(item, depth + 1, limit)) for key, item in items[:limit]),
        )
        return format_html('<dl class="agentos-kv">{}</dl>{}', rows, _more(len(items), limit))
    if isinstance(value, list):
        if not value:
            return mark_safe('<span class="agentos-none">(none)</span>')
        if _is_change_list(value):
            return changes_table(value, limit)
        if all(isinstance(item, dict) for item in value):
            return _records_table(value, depth, limit)
        return format_html(
            '<ul class="agentos-list">{}</ul>{}',
            format_html_join(
                "",
                "<li>{}</li>",
                ((readable(item, depth + 1, limit),) for item in value[:limit]),
            ),
            _more(len(value), limit),
        )
    return _scalar(value)


def readable_with_raw(
    value: Any,
    *,
    label: str = "raw JSON",
    limit: int = MAX_ROWS,
    raw_url: str = "",
) -> SafeString:
    """Return the readable rendering followed by the raw JSON behind a toggle.

    With `raw_url`, raw JSON longer than MAX_RAW_CHARS is linked, not inlined:
    a page that is re-fetched on every change stays small.
    """
    if value in (None, {}, []):
        return mark_safe('<span class="agentos-none">(nothing)</span>')
    raw = pretty_json(value)
    if raw_url and len(raw) > MAX_RAW_CHARS:
        return format_html(
            '{}<p class="agentos-raw"><a href="{}">{} ({} KiB)</a></p>',
            readable(value, limit=limit),
            raw_url,
            label,
            len(raw) // 1024,
        )
    return format_html(
        '{}<details class="agentos-raw"><summary>{}</summary>'
        '<pre class="agentos-json">{}</pre></details>',
        readable(value, limit=limit),
        label,
        raw,
    )
