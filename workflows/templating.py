"""`{{ key }}` references into a run's context, and nothing more.

A reference is a dotted path of identifiers. A string that is exactly one
reference takes the referenced value with its type; references inside a
longer string are interpolated as text. Nothing is evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
_EXACT = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}\s*$")
_ANY_BRACES = re.compile(r"\{\{|\}\}|\{%|%\}")
MISSING = object()


def references(value: Any) -> Iterator[str]:
    """Yield every dotted reference in a (nested) value."""
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield match.group(1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def check_syntax(value: Any) -> list[str]:
    """Return messages for template-like text that is not a plain reference.

    `{{ a | filter }}`, `{% tag %}` and `{{ a() }}` are refused, not ignored,
    so that injected template text never reaches an action unnoticed.
    """
    problems: list[str] = []
    if isinstance(value, str):
        leftover = REFERENCE.sub("", value)
        if _ANY_BRACES.search(leftover):
            problems.append(
                "only plain references like {{ key }} or {{ key.sub }} are allowed; "
                "no filters, calls, tags or expressions"
            )
    elif isinstance(value, dict):
        for item in value.values():
            problems.extend(check_syntax(item))
    elif isinstance(value, list):
        for item in value:
            problems.extend(check_syntax(item))
    return problems


def root_key(reference: str) -> str:
    """Return the context key a reference starts at."""
    if reference.startswith("context."):
        reference = reference[len("context.") :]
    return reference.split(".", 1)[0]


def lookup(context: dict, reference: str) -> Any:
    """Return the referenced value, or MISSING."""
    if reference.startswith("context.") and "context" not in context:
        reference = reference[len("context.") :]
    current: Any = context
    for part in reference.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    if current is None:
        return MISSING
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def render(value: Any, context: dict, missing: set[str]) -> Any:
    """Resolve references in a (nested) value; add missing references to `missing`."""
    if isinstance(value, str):
        exact = _EXACT.match(value)
        if exact:
            found = lookup(context, exact.group(1))
            if found is MISSING:
                missing.add(exact.group(1))
                return None
            return found

        def substitute(match: re.Match[str]) -> str:
            found = lookup(context, match.group(1))
            if found is MISSING:
                missing.add(match.group(1))
                return ""
            return _as_text(found)

        return REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {key: render(item, context, missing) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context, missing) for item in value]
    return value


def is_exact_reference(value: Any) -> str | None:
    """Return the reference if the value is exactly one `{{ ref }}`."""
    if isinstance(value, str):
        match = _EXACT.match(value)
        if match:
            return match.group(1)
    return None
