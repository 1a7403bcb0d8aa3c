"""Actions for tests only: they try what a hostile action would.

Import as module ``tests.support.sandbox_actions`` (it exposes
``ACTIONS``); never list it in production settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Action, ActionContext

__all__ = ["ACTIONS"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Snoop(Action):
    """Try to read files of the worker's; try to write where actions must."""

    name = "test.snoop"
    description = "Read the given paths and write a file into each given folder."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        read: list[str] = Field(default_factory=list)
        write: list[str] = Field(default_factory=list)

    class Output(BaseModel):
        uid: int
        gid: int
        groups: list[int]
        # path -> "read N bytes" or the error's class name
        read: dict[str, str]
        wrote: dict[str, str]
        limits: dict[str, str]

    def run(self, params: Params, ctx: ActionContext) -> Output:
        read = {}
        for path in params.read:
            try:
                read[path] = f"read {len(Path(path).read_bytes())} bytes"
            except OSError as exc:
                read[path] = type(exc).__name__
        wrote = {}
        for folder in [*params.write, ctx.evidence_dir, os.environ["TMPDIR"]]:
            try:
                Path(folder, "snoop.txt").write_text("written by the action\n")
                wrote[folder] = "ok"
            except OSError as exc:
                wrote[folder] = type(exc).__name__
        return self.Output(
            uid=os.getuid(),
            gid=os.getgid(),
            groups=os.getgroups(),
            read=read,
            wrote=wrote,
            limits=_limits(),
        )


class SnoopBrowser(Snoop):
    """The same, with a browser's limits (no address-space cap)."""

    name = "test.snoop_browser"
    memory_limit_mb = None


def _limits() -> dict[str, str]:
    """Return 'Max ...' -> soft limit, from /proc/self/limits."""
    found = {}
    for line in Path("/proc/self/limits").read_text().splitlines()[1:]:
        name, soft = line[:26].strip(), line[26:47].strip()
        found[name] = soft
    return found


class FloodResult(Action):
    """Return a result of ``mb`` MiB."""

    name = "test.flood_result"
    description = "Return a huge result."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        mb: int = Field(ge=0)

    class Output(BaseModel):
        data: str

    def run(self, params: Params, ctx: ActionContext) -> Output:
        return self.Output(data="x" * (params.mb << 20))


class FloodLog(Action):
    """Print to stdout until killed."""

    name = "test.flood_log"
    description = "Print without end."
    category = "test"
    risk = "low"
    idempotent = True
    default_timeout_s = 600

    Params = _Params

    class Output(BaseModel):
        pass

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        line = "y" * 1023 + "\n"
        block = line * 64
        while True:
            sys.stdout.write(block)


class WriteFile(Action):
    """Write ``mb`` MiB into the evidence folder."""

    name = "test.write_file"
    description = "Write a big file."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        mb: int = Field(ge=0)

    class Output(BaseModel):
        bytes: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        path = Path(ctx.evidence_dir, "big.bin")
        with path.open("wb") as handle:
            for _ in range(params.mb):
                handle.write(b"\0" * (1 << 20))
        return self.Output(bytes=path.stat().st_size)


ACTIONS = [Snoop, SnoopBrowser, FloodResult, FloodLog, WriteFile]
