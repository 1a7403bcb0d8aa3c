"""Remove secrets and local paths from text before it is stored.

Masking secrets in JSON-like data (``redact``, ``scrub_secrets_in``) and NUL
checks live in the Django-free ``agentos_common``; this module adds what
only the action side knows: the project's and the home directory's paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from agentos_common.redaction import SECRET_MASK

__all__ = ["PROJECT_DIR", "scrub"]

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
