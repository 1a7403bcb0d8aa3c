"""The one JSON encoding that hashes, digests and signatures cover."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

__all__ = ["canonical_digest", "canonical_json"]


def canonical_json(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """Return ``value`` as canonical JSON: sorted keys, no spaces, UTF-8 text.

    Two equal values always give the same text, so its hash identifies the
    value. ``default`` turns what JSON cannot hold (e.g. ``str``) into what
    it can.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default
    )


def canonical_digest(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """Return the SHA-256 (hex) of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value, default=default).encode()).hexdigest()
