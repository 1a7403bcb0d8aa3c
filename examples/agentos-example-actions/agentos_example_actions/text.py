"""Text actions: count the words of a text, write a greeting into a file.

Registered through the entry point ``text`` (a module: every class in
``ACTIONS``). Like every action they run in a forked child with no Django, so
they import only ``executors.base`` and pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Action, ActionContext, ActionFailed, Policy


class WordCountParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=100_000, description="The text to count.")


class WordCountOutput(BaseModel):
    words: int
    characters: int


class WordCount(Action):
    """Count the words and characters of a text. Touches nothing."""

    name = "text.word_count"
    description = "Count the words and characters of a text."
    category = "text"
    risk = "low"
    idempotent = True
    default_timeout_s = 10
    Params = WordCountParams
    Output = WordCountOutput

    def run(self, params: WordCountParams, ctx: ActionContext) -> WordCountOutput:
        return WordCountOutput(words=len(params.text.split()), characters=len(params.text))


class GreetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Whom to greet.")
    path: str = Field(description="File to write, relative to the first files root.")


class GreetOutput(BaseModel):
    path: str
    greeting: str


class Greet(Action):
    """Write a greeting into a new file under the run's first files root."""

    name = "text.greet"
    description = "Write a greeting for a person into a new text file."
    category = "text"
    risk = "medium"
    idempotent = False
    default_timeout_s = 10
    Params = GreetParams
    Output = GreetOutput

    @classmethod
    def policy_errors(cls, params: dict, policy: Policy) -> list[tuple[str, str]]:
        path = params.get("path")
        if isinstance(path, str) and "{{" not in path and not _relative_and_inside(path):
            return [("path", "must be a relative path inside the files root")]
        return []

    def run(self, params: GreetParams, ctx: ActionContext) -> GreetOutput:
        if not ctx.files_roots:
            raise ActionFailed("no files root is configured")
        if not _relative_and_inside(params.path):
            raise ActionFailed("path must be a relative path inside the files root")
        root = Path(ctx.files_roots[0]).resolve()
        target = (root / params.path).resolve()
        if root not in target.parents:
            raise ActionFailed("path must be a relative path inside the files root")
        greeting = f"Hello, {params.name}!\n"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: never overwrite what is there.
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            raise ActionFailed(f"{params.path} already exists") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(greeting)
        return GreetOutput(path=params.path, greeting=greeting.strip())


def _relative_and_inside(path: str) -> bool:
    parts = Path(path).parts
    return bool(parts) and not Path(path).is_absolute() and ".." not in parts


ACTIONS = [WordCount, Greet]
