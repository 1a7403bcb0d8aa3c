"""One action, ``test.versioned``, in three releases: for the upgrade tests.

A worker of a given release lists one of ``tests.support.upgrade_v1``,
``upgrade_v2`` or ``upgrade_v3`` in AGENTOS_ACTION_MODULES:

- v1 appends ``<line> v1`` to a ledger;
- v2 adds an optional parameter (a compatible change) and writes ``v2``;
- v3 renames ``line`` to ``text`` (a breaking change).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from executors.base import Action, ActionContext

__all__: list[str] = []


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Done(BaseModel):
    written: str


def _append(ledger: str, line: str) -> str:
    with open(ledger, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return line


class _Versioned(Action):
    name = "test.versioned"
    description = "Append a line to a ledger, marked with this release."
    category = "test"
    risk = "low"
    idempotent = True
    Output = _Done


class V1(_Versioned):
    class Params(_Params):
        ledger: str
        line: str

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        return _Done(written=_append(params.ledger, f"{params.line} v1"))


class V2(_Versioned):
    class Params(_Params):
        ledger: str
        line: str
        suffix: str = "v2"

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        return _Done(written=_append(params.ledger, f"{params.line} {params.suffix}"))


class V3(_Versioned):
    class Params(_Params):
        ledger: str
        text: str

    def run(self, params: Params, ctx: ActionContext) -> BaseModel:
        return _Done(written=_append(params.ledger, f"{params.text} v3"))
