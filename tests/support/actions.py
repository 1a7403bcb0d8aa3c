"""Actions for tests only: they touch absolute paths outside any root.

Import as module ``tests.support.actions`` (it exposes ``ACTIONS``); never
list it in production settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Action, ActionContext, ActionFailed, NeedsInput

__all__ = ["ACTIONS"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Empty(BaseModel):
    pass


def _append(ledger: str, line: str) -> None:
    # One write() of a short line in append mode is atomic enough for
    # tests that count lines written by concurrent attempts.
    with open(ledger, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


class Noop(Action):
    """Do nothing; measures the runner's own overhead."""

    name = "test.noop"
    description = "Do nothing."
    category = "test"
    risk = "low"
    idempotent = True
    Params = _Params
    Output = _Empty

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        return _Empty()


class LedgerAppend(Action):
    """Append a line to an absolute ledger path (not confined)."""

    name = "test.ledger_append"
    description = "Append a line to a ledger file."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        ledger: str
        line: str

    class Output(BaseModel):
        ledger: str
        line: str

    def run(self, params: Params, ctx: ActionContext) -> Output:
        _append(params.ledger, params.line)
        return self.Output(ledger=params.ledger, line=params.line)


class LedgerAppendOnce(LedgerAppend):
    """Append a line to a ledger; must not be retried blindly."""

    name = "test.ledger_append_once"
    description = "Append a line to a ledger file (not idempotent)."
    idempotent = False


class Sleep(Action):
    """Sleep, optionally logging start and end with the idempotency key."""

    name = "test.sleep"
    description = "Sleep for a number of seconds."
    category = "test"
    risk = "low"
    idempotent = True
    default_timeout_s = 3600

    class Params(_Params):
        seconds: float = Field(ge=0)
        ledger: str | None = None

    class Output(BaseModel):
        slept: float

    def run(self, params: Params, ctx: ActionContext) -> Output:
        if params.ledger:
            _append(params.ledger, f"start {ctx.idempotency_key}")
        time.sleep(params.seconds)
        if params.ledger:
            _append(params.ledger, f"end {ctx.idempotency_key}")
        return self.Output(slept=params.seconds)


class Meet(Action):
    """Log a start, then wait until `count` starts are in the ledger: a rendezvous.

    Proves actions run at the same time without timing them: run one after
    another, the first never meets the others and fails after `wait_s`.
    """

    name = "test.meet"
    description = "Wait in the ledger until `count` actions have started."
    category = "test"
    risk = "low"
    idempotent = True
    default_timeout_s = 600

    class Params(_Params):
        ledger: str
        count: int = Field(ge=1)
        wait_s: float = Field(default=60, gt=0)

    class Output(BaseModel):
        met: int

    def run(self, params: Params, ctx: ActionContext) -> Output:
        _append(params.ledger, f"start {ctx.idempotency_key}")
        deadline = time.monotonic() + params.wait_s
        while True:
            lines = Path(params.ledger).read_text(encoding="utf-8").splitlines()
            met = sum(1 for line in lines if line.startswith("start "))
            if met >= params.count:
                break
            if time.monotonic() > deadline:
                raise ActionFailed(f"only {met} of {params.count} started within {params.wait_s}s")
            time.sleep(0.02)
        _append(params.ledger, f"end {ctx.idempotency_key}")
        return self.Output(met=met)


class SpawnAndHang(Action):
    """Start a ``sleep 1000`` grandchild, record its pid, then hang."""

    name = "test.spawn_and_hang"
    description = "Start a grandchild process and never return."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        pid_file: str
        # A session of its own, as Playwright gives Chromium: out of the
        # action's process group, so only the zygote (subreaper) can end it.
        detach: bool = False
        hang: bool = True

    Output = _Empty

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        grandchild = subprocess.Popen(["sleep", "1000"], start_new_session=params.detach)
        tmp = params.pid_file + ".tmp"
        Path(tmp).write_text(str(grandchild.pid), encoding="utf-8")
        os.replace(tmp, params.pid_file)  # readers never see a partial pid
        while params.hang:
            time.sleep(1000)
        return _Empty()


class Fail(Action):
    """Fail the expected way with a message."""

    name = "test.fail"
    description = "Raise ActionFailed."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        message: str

    Output = _Empty

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        raise ActionFailed(params.message)


class Crash(Action):
    """Crash with an unexpected exception, printing first."""

    name = "test.crash"
    description = "Raise RuntimeError."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        message: str = "boom"

    Output = _Empty

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        print(f"about to crash in {os.getcwd()}")
        raise RuntimeError(params.message)


class Ask(Action):
    """Pause for a person to choose a value, then return it."""

    name = "test.ask"
    description = "Ask for a value from an enum."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        field: str
        enum: list[str]

    class Output(BaseModel):
        value: str

    def run(self, params: Params, ctx: ActionContext) -> Output:
        values = ctx.resume_values or {}
        if params.field in values:
            return self.Output(value=values[params.field])
        raise NeedsInput(
            f"choose a value for {params.field}",
            fields={params.field: {"type": "string", "enum": params.enum}},
            required=[params.field],
            state={"asked": params.field},
        )


class Echo(Action):
    """Print a text and a secret's value; return the text and secret."""

    name = "test.echo_secret"
    description = "Print and return a secret (for scrubbing tests)."
    category = "test"
    risk = "low"
    idempotent = True
    secrets = ("TEST_TOKEN",)

    class Params(_Params):
        text: str = ""

    class Output(BaseModel):
        text: str
        environ: list[str]
        home: str

    def run(self, params: Params, ctx: ActionContext) -> Output:
        token = ctx.secret("TEST_TOKEN")
        print(f"token={token} text={params.text}", flush=True)
        return self.Output(
            text=f"{params.text}:{token}",
            environ=sorted(os.environ),
            home=os.environ.get("HOME", ""),
        )


class Streams(Action):
    """Write a line to stdout and to stderr; describe both streams."""

    name = "test.streams"
    description = "Describe and write to the log streams."
    category = "test"
    risk = "low"
    idempotent = True
    Params = _Params

    class Output(BaseModel):
        streams: dict[str, dict[str, Any]]

    def run(self, params: Any, ctx: ActionContext) -> Output:
        described = {}
        for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            described[name] = {
                "fileno": stream.fileno(),
                "seekable": stream.seekable(),
                "line_buffering": stream.line_buffering,
                "encoding": stream.encoding,
                "errors": stream.errors,
            }
            # No flush: a line-buffered stream writes each line at once.
            print(f"a line to {name} \udcff", file=stream)
        return self.Output(streams=described)


class Allocate(Action):
    """Allocate memory, to show the address-space limit applies."""

    name = "test.allocate"
    description = "Allocate a number of megabytes."
    category = "test"
    risk = "low"
    idempotent = True
    memory_limit_mb = 256

    class Params(_Params):
        megabytes: int

    Output = _Empty

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        block = bytearray(params.megabytes * 1024 * 1024)
        del block
        return _Empty()


class Exit(Action):
    """Leave without a result: exit with a code or die of a signal."""

    name = "test.exit"
    description = "Exit abruptly."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        code: int = 0
        signal: int | None = None

    Output = _Empty

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        if params.signal is not None:
            os.kill(os.getpid(), params.signal)
            time.sleep(10)
        os._exit(params.code)


class Scratch(Action):
    """Leave a file in the action's own temp folder; say where."""

    name = "test.scratch"
    description = "Write a file to TMPDIR."
    category = "test"
    risk = "low"
    idempotent = True
    Params = _Params

    class Output(BaseModel):
        path: str

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        path = Path(tempfile.gettempdir()) / "scratch.txt"
        path.write_text("left behind")
        return self.Output(path=str(path))


class Loaded(Action):
    """Say which of the named modules the action process has loaded, and its parent."""

    name = "test.loaded"
    description = "Report loaded modules."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        modules: list[str]

    class Output(BaseModel):
        loaded: list[str]
        parent: int

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        loaded = [name for name in params.modules if name in sys.modules]
        return self.Output(loaded=loaded, parent=os.getppid())


class LedgerStep(Action):
    """Append `<line> <attempt>` to a ledger, optionally after a pause.

    The scale and fault tests count these lines: which step ran, how often,
    and in which attempt, recorded outside the database. While the file
    `hold` names exists the step waits before its line (a fault test holds
    every run's progress while it restarts a cluster).
    """

    name = "test.ledger_step"
    description = "Append a line and the attempt number to a ledger file."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        ledger: str
        line: str
        pause_s: float = Field(default=0.0, ge=0, le=10)
        hold: str = ""

    class Output(BaseModel):
        line: str

    def run(self, params: Params, ctx: ActionContext) -> Output:
        if params.pause_s:
            time.sleep(params.pause_s)
        while params.hold and os.path.exists(params.hold):
            time.sleep(0.01)
        _append(params.ledger, f"{params.line} {ctx.attempt}")
        return self.Output(line=params.line)


class OutputShape(Action):
    """Return its output as a model, as a plain dict, or in the wrong shape.

    The child validates what ``run`` returns against ``Output``: a dict of
    the right shape becomes the model, a wrong one is an action bug (a crash).
    """

    name = "test.output_shape"
    description = "Return a model, a dict, or a wrong shape (output validation tests)."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(_Params):
        shape: str = Field(pattern="^(model|dict|wrong)$")

    class Output(BaseModel):
        count: int
        label: str

    def run(self, params: Params, ctx: ActionContext) -> Any:
        if params.shape == "model":
            return self.Output(count=3, label="three")
        if params.shape == "dict":
            return {"count": 3, "label": "three"}
        return {"count": "three"}


ACTIONS: list[type[Action]] = [
    Noop,
    LedgerAppend,
    LedgerAppendOnce,
    Sleep,
    Meet,
    SpawnAndHang,
    Fail,
    Crash,
    Ask,
    Echo,
    Streams,
    Allocate,
    Exit,
    Scratch,
    Loaded,
    LedgerStep,
    OutputShape,
]
