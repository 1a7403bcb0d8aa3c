"""Find a NUL character in JSON-like data, naming where it is.

PostgreSQL stores neither NUL in text nor ``\\u0000`` in jsonb, so such a
value is refused where it enters (API, forms, plans, action outputs), naming
where it is, on every backend.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NUL_MESSAGE", "first_nul"]

NUL_MESSAGE = "must not contain a NUL (0x00) character"


def first_nul(data: Any, where: str = "") -> str | None:
    """Return the dotted path of the first string in JSON-like ``data`` (a
    value or a key) that holds a NUL character, or None when there is none.
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
