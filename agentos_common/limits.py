"""Bounds on the shape of untrusted structured input: nesting depth.

JSON and YAML nest without limit, and the code that handles them (Python's
``json``, ``copy.deepcopy``, pydantic, jsonschema, the hash chain's
canonical encoding) recurses: a body nested a few hundred levels deep ends
in ``RecursionError`` (a 500) somewhere far from where it came in. Every
door measures depth first, without recursing, and refuses with the field's
name; nothing legitimate comes anywhere near the bound.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "TooDeep", "check_depth", "loads", "text_depth", "value_depth"]

MAX_DEPTH = 32
# Strings (with their escapes) are skipped whole, so brackets inside them
# do not count; what is left that opens or closes is a container.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """A value nests containers deeper than the bound."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"nested deeper than {limit} levels")
        self.limit = limit


def text_depth(text: str | bytes, limit: int = MAX_DEPTH) -> int:
    """Return how deep JSON text nests, counting no further than ``limit + 1``.

    Does not parse: it only counts brackets outside strings, so it is safe
    (and cheap) on text that would exhaust a recursive parser.
    """
    data = text.encode() if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:
        return 0  # cannot be deeper than the bound; the common case
    depth = deepest = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in (b"]", b"}"):
            depth = max(depth - 1, 0)
    return deepest


def value_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Return how deep a JSON-like value nests (lists, tuples, dicts), iteratively.

    Stops counting past ``limit + 1``; shared sub-values are walked once.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list, tuple)) or id(item) in seen:
            continue
        seen.add(id(item))
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when a value nests deeper than ``limit``."""
    if value_depth(value, limit) > limit:
        raise TooDeep(limit)


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """Parse JSON text, refusing (TooDeep, a ValueError) text nested too deep."""
    if text_depth(text, limit) > limit:
        raise TooDeep(limit)
    return json.loads(text)
