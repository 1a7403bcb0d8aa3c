"""Read and export the whole event log for auditors (JSON Lines, CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet

from agentos_common.canonical import canonical_json
from workflows.events import _utc, system_event_append
from workflows.models import Event
from workflows.selectors import redact

CSV_COLUMNS = [
    "id",
    "run",
    "seq",
    "type",
    "actor",
    "at",
    "correlation_id",
    "data",
    "prev_hash",
    "hash",
    "key_id",
]


def audit_events(
    *, after: int = 0, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[Event]:
    """Return the log in the order it was written (by id), narrowed as asked."""
    events = Event.objects.filter(id__gt=after).order_by("id")
    if since is not None:
        events = events.filter(at__gte=_utc_bound(since))
    if until is not None:
        events = events.filter(at__lt=_utc_bound(until))
    return events


def _utc_bound(value: datetime) -> datetime:
    """Return a time bound in UTC (naive means UTC); PostgreSQL refuses odd offsets."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # an offset pushed it past year 1 or 9999
        return (datetime.min if value.year < 2 else datetime.max).replace(tzinfo=UTC)


def audit_exported(
    *, actor: Any, since: datetime | None, until: datetime | None, format: str, after: int = 0
) -> Event:
    """Record that someone exported the log (admin or API), and what they asked for."""
    data: dict[str, Any] = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "format": format,
    }
    if after:
        data["after"] = after
    return system_event_append(type="audit.exported", actor=actor, data=data)


def event_record(event: Event) -> dict[str, Any]:
    """Return an event as exported: every stored field, UTC time, the hash."""
    return {
        "id": event.pk,
        "run": event.run_id,
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor_label,
        "at": _utc(event.at),
        # Masked like every other surface: an export leaves the system.
        "correlation_id": event.correlation_id,
        "data": redact(event.data),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "key_id": event.key_id,
    }


def export_jsonl(events: QuerySet[Event]) -> Iterator[str]:
    """Yield one JSON object per line."""
    for event in events.iterator(chunk_size=500):
        yield json.dumps(event_record(event), ensure_ascii=False, sort_keys=True) + "\n"


def export_csv(events: QuerySet[Event]) -> Iterator[str]:
    """Yield a CSV with a header; `data` is canonical JSON in one cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=500):
        record = event_record(event)
        record["data"] = canonical_json(record["data"])
        writer.writerow(["" if record[c] is None else record[c] for c in CSV_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
