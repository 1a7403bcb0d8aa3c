"""Remove secrets and local paths from text before it is stored."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "NUL_MESSAGE",
    "PROJECT_DIR",
    "SECRET_KEY_NAME",
    "first_nul",
    "redact",
    "scrub",
    "scrub_secrets_in",
]

SECRET_MASK = "***"
# Keys whose values are shown masked whatever they hold.
SECRET_KEY_NAME = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential", re.I)
NUL_MESSAGE = "must not contain a NUL (0x00) character"
PROJECT_DIR = str(Path(__file__).resolve().parent.parent)


@lru_cache(maxsize=1)
def _path_placeholders() -> tuple[tuple[str, str], ...]:
    """Return (prefix, placeholder) pairs, longest prefix first."""
    pairs = {PROJECT_DIR: "<project>"}
    home = os.path.expanduser("~")
    # A home of "/" (daemons, containers) would turn every path into
    # garbage, so only a real directory below the root is replaced.
    if home not in ("", "/", "~"):
        pairs[str(Path(home).resolve())] = "~"
        pairs[home] = "~"
    return tuple(sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Mask secret values and replace the home and project directories.

    Longer secrets go first so a secret that contains another is masked
    whole rather than leaving fragments.
    """
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, SECRET_MASK)
    for prefix, placeholder in _path_placeholders():
        text = text.replace(prefix, placeholder)
    return text


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


def first_nul(data: Any, where: str = "") -> str | None:
    """Return the dotted path of the first string in JSON-like ``data`` (a
    value or a key) that holds a NUL character, or None when there is none.

    PostgreSQL stores neither NUL in text nor \\u0000 in jsonb, so such a
    value is refused where it enters, naming where it is, on every backend.
    """
    if isinstance(data, str):
        return where if "\x00" in data else None
    if isinstance(data, dict):
        for key, value in data.items():
            name = str(key).replace("\x00", "\\x00")  # printable in the error
            path = f"{where}.{name}" if where else name
            if name != str(key):
                return path
            found = first_nul(value, path)
            if found is not None:
                return found
    elif isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            found = first_nul(value, f"{where}.{index}" if where else str(index))
            if found is not None:
                return found
    return None
