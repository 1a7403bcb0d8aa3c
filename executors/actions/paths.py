"""Confine file paths to a run's allowed roots.

Used both by ``policy_errors`` (in the plan validator, before anything
runs) and inside the actions (at run time), so the same rule decides in
both places.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

from executors.base import ActionFailed, Policy, is_template

__all__ = [
    "check_glob",
    "confine",
    "confined_policy_errors",
    "resolved_roots",
    "sha256_file",
]

CHUNK = 1 << 20


def resolved_roots(roots: Sequence[str]) -> list[Path]:
    """Return the roots with symlinks resolved; fail if there are none."""
    if not roots:
        raise ActionFailed("no file roots are configured for this run")
    resolved = []
    for root in roots:
        if not os.path.isabs(root):
            raise ActionFailed(f"file root {root!r} is not an absolute path")
        resolved.append(Path(os.path.realpath(root)))
    return resolved


def confine(path: str, roots: Sequence[str]) -> Path:
    """Return ``path`` resolved, or fail unless it stays inside a root.

    Relative paths are taken from the first root. Any ``..`` component is
    refused outright rather than resolved, since a plan has no honest need
    for one; symlinks are resolved before the containment check, so a link
    inside a root that points outside it is refused too.
    """
    if not path or any(ord(ch) < 32 or ch == "\x7f" for ch in path):
        raise ActionFailed(f"{path!r} is not a valid path (empty or control characters)")
    if ".." in PurePath(path).parts:
        raise ActionFailed(f"{path!r} contains '..', which is not allowed")
    allowed = resolved_roots(roots)
    candidate = Path(path) if os.path.isabs(path) else Path(roots[0]) / path
    real = Path(os.path.realpath(candidate))
    if not any(real == root or real.is_relative_to(root) for root in allowed):
        raise ActionFailed(f"{path!r} is outside the allowed file roots")
    return real


def is_root(path: Path, roots: Sequence[str]) -> bool:
    """Return whether the resolved ``path`` is one of the roots itself."""
    return path in resolved_roots(roots)


def check_glob(pattern: str) -> str:
    """Return ``pattern`` if it is a relative glob without ``..``."""
    if not pattern:
        raise ValueError("pattern must not be empty")
    if os.path.isabs(pattern):
        raise ValueError("pattern must be relative to the directory")
    if ".." in PurePath(pattern).parts:
        raise ValueError("pattern must not contain '..'")
    return pattern


def confined_policy_errors(
    params: dict[str, Any], policy: Policy, fields: Sequence[str]
) -> list[tuple[str, str]]:
    """Return (field, message) for each literal path outside the roots."""
    errors = []
    for field in fields:
        value = params.get(field)
        # Templated values are checked again in the child once rendered.
        if not isinstance(value, str) or is_template(value):
            continue
        try:
            confine(value, policy.files_roots)
        except ActionFailed as exc:
            errors.append((field, str(exc)))
    return errors


def sha256_file(path: Path) -> tuple[str, int]:
    """Return the hex SHA-256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def regular_file(path: Path, label: str) -> Path:
    """Return ``path`` if it is an existing regular file, else fail."""
    if not path.exists():
        raise ActionFailed(f"{label} {str(path)!r} does not exist")
    if not path.is_file():
        raise ActionFailed(f"{label} {str(path)!r} is not a regular file")
    return path
