"""Actions the engine and worker tests use: slow on the first attempt only.

Killing a worker mid-step needs a step that is still running when the test
kills it, and a retry that finishes quickly afterwards.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Action, ActionContext

__all__ = ["ACTIONS"]


class SlowFirst(Action):
    """Log "start"/"end" with the attempt to a ledger; sleep on attempt 1 only."""

    name = "test.slow_first"
    description = "Sleep on the first attempt, return at once on later ones."
    category = "test"
    risk = "low"
    idempotent = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        ledger: str
        seconds: float = Field(30, ge=0)

    class Output(BaseModel):
        attempt: int

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        with open(params.ledger, "a", encoding="utf-8") as handle:
            handle.write(f"start {ctx.node_id} {ctx.attempt}\n")
        if ctx.attempt == 1:
            time.sleep(params.seconds)
        with open(params.ledger, "a", encoding="utf-8") as handle:
            handle.write(f"end {ctx.node_id} {ctx.attempt}\n")
        return self.Output(attempt=ctx.attempt)


class SlowFirstOnce(SlowFirst):
    """The same, but not idempotent: an interruption needs a person."""

    name = "test.slow_first_once"
    description = "Sleep on the first attempt (not idempotent)."
    idempotent = False


class Risky(Action):
    """A high-risk no-op: assisted mode must ask before it runs."""

    name = "test.risky"
    description = "Pretend to do something dangerous."
    category = "test"
    risk = "high"
    idempotent = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        target: str

    class Output(BaseModel):
        target: str

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        return self.Output(target=params.target)


ACTIONS = [SlowFirst, SlowFirstOnce, Risky]
