"""AGENTOS_LOG_FORMAT=json: one JSON object per log line, for log shippers.

Each line has `at` (UTC, ISO 8601), `level`, `logger`, `message`, and, when
known, `correlation_id`, `run_id` and `node_path` (bound by the request or
the run being advanced: agentos_site.correlation; or given by the log call
with `extra={...}`), plus `exc` with the traceback of an exception.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from agentos_site import correlation

FIELDS = ("correlation_id", "run_id", "node_path")


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        bound = correlation.current()
        # django.request logs an error answer after the middleware is done,
        # with the request attached: its id is on it.
        request_id = getattr(getattr(record, "request", None), "correlation_id", None)
        if request_id and "correlation_id" not in bound:
            bound["correlation_id"] = request_id
        for name in FIELDS:
            value = getattr(record, name, None) or bound.get(name)
            if value not in (None, ""):
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
