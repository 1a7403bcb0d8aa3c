"""Confine HTTP calls to the run's allowed hosts; read JSON by path.

Used by the plan validator (``policy_errors``) and again in the child
before any request leaves, so a URL rendered from the context is checked
as strictly as a literal one.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from executors.base import ActionFailed

__all__ = ["check_url", "json_path"]

_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")
MISSING = object()


def check_url(url: str, allowed_hosts: list[str] | tuple[str, ...]) -> str:
    """Return ``url`` if it is http(s) to an allowed host, else fail naming why."""
    if any(ch in url for ch in "\r\n\t\x00 "):
        raise ActionFailed("the URL must not contain whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ActionFailed(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    if parts.username or parts.password:
        raise ActionFailed("credentials in the URL are not allowed; use a named secret")
    host = (parts.hostname or "").lower()
    if not host:
        raise ActionFailed("the URL has no host")
    allowed = {h.strip().lower() for h in allowed_hosts if h.strip()}
    if host not in allowed:
        raise ActionFailed(
            f"host {host!r} is not on AGENTOS_API_ALLOWED_HOSTS"
            f" ({', '.join(sorted(allowed)) or 'none configured'})"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ActionFailed("the URL's port is not a number") from None
    return url


def json_path(document: Any, path: str) -> Any:
    """Return the value at a simple JSONPath (``$.a.b[0]["c d"]``) or MISSING.

    Only member and index steps: no filters, slices or script expressions.
    """
    if not path.startswith("$"):
        raise ValueError(f"{path!r} must start with '$'")
    rest, position, current = path[1:], 0, document
    while position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if not match:
            raise ValueError(f"{path!r} is not a supported JSONPath (use $.a.b[0])")
        position = match.end()
        name, index, quoted1, quoted2 = match.groups()
        key = name if name is not None else quoted1 if quoted1 is not None else quoted2
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return MISSING
            current = current[int(index)]
        elif isinstance(current, dict) and key in current:
            current = current[key]
        else:
            return MISSING
    return current
