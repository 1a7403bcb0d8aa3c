"""Mask secret values in JSON-like data before it is shown or stored."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["SECRET_KEY_NAME", "SECRET_MASK", "redact", "scrub_secrets_in"]

SECRET_MASK = "***"
# Keys whose values are shown masked whatever they hold.
SECRET_KEY_NAME = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential", re.I)


def scrub_secrets_in(data: Any, secrets: Iterable[str]) -> Any:
    """Return a copy of JSON-like ``data`` with secret values masked.

    Only secrets, not paths: outputs legitimately carry absolute paths
    that later steps read back.
    """
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not values:
        return data

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for value in values:
                item = item.replace(value, SECRET_MASK)
            return item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(data)


def redact(data: Any, secrets: Iterable[str]) -> Any:
    """Return a copy of JSON-like ``data`` (or a string) fit to show a person.

    The one redaction every surface applies before showing stored data (the
    API, the inbox, the admin's run, request, state and event pages, the
    websocket feeds, the audit export): a configured secret value is masked
    wherever it appears, in values and keys, and a non-empty string under a
    key that names a secret (``password``, ``api_key``, ``token``...), or in
    a list under one, is masked whole. Numbers stay (``"token": 17`` is a
    token's id). Plain Python, no Django: callers pass the secret values.
    """
    values = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(item: str) -> str:
        for value in values:
            item = item.replace(value, SECRET_MASK)
        return item

    def walk(item: Any, named_secret: bool = False) -> Any:
        if isinstance(item, str):
            return SECRET_MASK if named_secret and item else text(item)
        if isinstance(item, dict):
            return {
                (text(k) if isinstance(k, str) else k): walk(
                    v, bool(SECRET_KEY_NAME.search(str(k)))
                )
                for k, v in item.items()
            }
        if isinstance(item, (list, tuple)):
            return [walk(v, named_secret) for v in item]
        return item

    return walk(data)
