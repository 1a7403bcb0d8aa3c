"""Checks that end a step in failure when the world is not as expected.

They change nothing: file checks only read inside the run's file roots,
and ``verify.value_equals`` compares two values (usually one rendered
from the run's context).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from executors.actions.files import ConfinedAction
from executors.actions.paths import confine, regular_file, sha256_file
from executors.base import Action, ActionContext, ActionFailed

__all__ = [
    "ACTIONS",
    "VerifyFileAbsent",
    "VerifyFileContains",
    "VerifyFileExists",
    "VerifyValueEquals",
]

SHOWN_CHARS = 200


class VerifyFileExists(ConfinedAction):
    """Check that a file exists under the roots and record its hash."""

    name = "verify.file_exists"
    description = "Fail unless the file exists; return its SHA-256 and size."
    category = "verify"
    risk = "low"
    idempotent = True
    path_fields = ("path",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="File that must exist.")

    class Output(BaseModel):
        path: str
        sha256: str
        bytes: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Return the file's resolved path, hash and size."""
        path = regular_file(confine(params.path, ctx.files_roots), "file")
        digest, size = sha256_file(path)
        return self.Output(path=str(path), sha256=digest, bytes=size)


class VerifyFileAbsent(ConfinedAction):
    """Check that nothing exists at a path under the roots."""

    name = "verify.file_absent"
    description = "Fail if anything exists at the path."
    category = "verify"
    risk = "low"
    idempotent = True
    path_fields = ("path",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="Path that must not exist.")

    class Output(BaseModel):
        path: str

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Return the resolved path when nothing is there."""
        path = confine(params.path, ctx.files_roots)
        if path.exists():
            raise ActionFailed(f"{params.path!r} exists but should not")
        return self.Output(path=str(path))


class VerifyFileContains(ConfinedAction):
    """Check that a text file under the roots contains some text."""

    name = "verify.file_contains"
    description = "Fail unless the file contains the text; return the line."
    category = "verify"
    risk = "low"
    idempotent = True
    path_fields = ("path",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="Text file to search.")
        text: str = Field(min_length=1, description="Text to look for.")

    class Output(BaseModel):
        path: str
        line: int = Field(description="1-based line where the text starts.")

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Return the first line on which the text starts."""
        path = regular_file(confine(params.path, ctx.files_roots), "file")
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            if "\n" in params.text:
                # Text spanning lines cannot be found line by line.
                content = handle.read()
                index = content.find(params.text)
                line = content.count("\n", 0, index) + 1 if index >= 0 else 0
            else:
                line = next((n for n, text in enumerate(handle, 1) if params.text in text), 0)
        if not line:
            raise ActionFailed(f"{params.path!r} does not contain {_show(params.text)}")
        return self.Output(path=str(path), line=line)


class VerifyValueEquals(Action):
    """Compare two values, typically one rendered from the run's context."""

    name = "verify.value_equals"
    description = (
        "Fail unless value equals expected (numbers compare by value; true/false never equal 1/0)."
    )
    category = "verify"
    risk = "low"
    idempotent = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        value: Any = Field(description="Value to check, e.g. '{{ key }}'.")
        expected: Any = Field(description="Value it must equal.")

    class Output(BaseModel):
        value: Any

    def run(self, params: Params, ctx: ActionContext) -> Output:
        """Return the value when it equals the expected one."""
        if not values_equal(params.value, params.expected):
            raise ActionFailed(
                f"value {_show(params.value)} does not equal expected {_show(params.expected)}"
            )
        return self.Output(value=params.value)


def values_equal(left: Any, right: Any) -> bool:
    """Compare JSON values, keeping booleans apart from numbers.

    Python's ``True == 1`` would let a check pass that a reader of the
    plan would call a mismatch.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            values_equal(left[key], right[key]) for key in left
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            values_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)


def _show(value: Any) -> str:
    """Render a value as JSON for a message, cut to a readable length."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


ACTIONS: list[type[Action]] = [
    VerifyFileExists,
    VerifyFileAbsent,
    VerifyFileContains,
    VerifyValueEquals,
]
