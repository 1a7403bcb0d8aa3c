"""The registry accepts only well-formed actions and is closed after start."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from executors.base import Action, ActionContext, ActionFailed, NeedsInput, Policy
from executors.registry import (
    BUILTIN_MODULES,
    RegistrationError,
    Registry,
    RegistryClosed,
    UnknownAction,
    build_registry,
)

BUILTIN_NAMES = [
    "api.request",
    "api.suite",
    "excel.chart",
    "excel.health",
    "excel.lookup",
    "excel.pivot",
    "files.cleanup",
    "files.copy",
    "files.list",
    "files.move",
    "files.move_where",
    "files.organize",
    "files.rename",
    "files.sha256",
    "verify.file_absent",
    "verify.file_contains",
    "verify.file_exists",
    "verify.value_equals",
]


class GoodParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = ""


class GoodOutput(BaseModel):
    text: str


def make_action(**overrides: Any) -> type[Action]:
    """Return a fresh, valid action class with some attributes replaced."""
    attrs: dict[str, Any] = {
        "name": "demo.echo",
        "description": "Echo the text.",
        "category": "demo",
        "risk": "low",
        "idempotent": True,
        "Params": GoodParams,
        "Output": GoodOutput,
        "run": lambda self, params, ctx: GoodOutput(text=params.text),
    }
    attrs.update(overrides)
    return type("DemoEcho", (Action,), attrs)


class LaxParams(BaseModel):
    text: str = ""


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"name": "Demo.echo"}, "family.verb"),
        ({"name": "demo"}, "family.verb"),
        ({"name": "demo.echo.more"}, "family.verb"),
        ({"name": "demo.Echo"}, "family.verb"),
        ({"name": "1demo.echo"}, "family.verb"),
        ({"description": "  "}, "description"),
        ({"category": ""}, "category"),
        ({"risk": "extreme"}, "risk"),
        ({"idempotent": "yes"}, "idempotent"),
        ({"default_timeout_s": 0}, "default_timeout_s"),
        ({"memory_limit_mb": -5}, "memory_limit_mb"),
        ({"secrets": ["API_KEY"]}, "secrets"),
        ({"Params": dict}, "Params must be a pydantic"),
        ({"Params": LaxParams}, 'extra="forbid"'),
        ({"Output": None}, "Output must be a pydantic"),
        ({"run": Action.run}, "run()"),
    ],
)
def test_malformed_actions_are_refused(overrides: dict[str, Any], complaint: str) -> None:
    registry = Registry()
    with pytest.raises(RegistrationError, match=re.escape(complaint)):
        registry.register(make_action(**overrides))
    assert "demo.echo" not in registry


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(RegistrationError) as caught:
        Registry().register(make_action(name="bad", risk="none", description=""))
    message = str(caught.value)
    assert "family.verb" in message and "risk" in message and "description" in message


def test_non_action_classes_are_refused() -> None:
    with pytest.raises(RegistrationError, match="not an Action subclass"):
        Registry().register(GoodOutput)  # type: ignore[type-var]


def test_duplicate_names_are_refused() -> None:
    registry = Registry()
    registry.register(make_action())
    with pytest.raises(RegistrationError, match="already registered"):
        registry.register(make_action())


def test_register_works_as_a_decorator() -> None:
    registry = Registry()

    @registry.register
    class Shout(Action):
        name = "demo.shout"
        description = "Shout."
        category = "demo"
        risk = "medium"
        idempotent = False
        Params = GoodParams
        Output = GoodOutput

        def run(self, params: Any, ctx: ActionContext) -> BaseModel:
            return GoodOutput(text=params.text.upper())

    assert registry.get("demo.shout") is Shout


def test_a_closed_registry_refuses_registration() -> None:
    registry = Registry()
    registry.close()
    assert registry.closed
    with pytest.raises(RegistryClosed):
        registry.register(make_action())


def test_unknown_names_raise_unknown_action() -> None:
    registry = build_registry()
    with pytest.raises(UnknownAction, match=r"files\.delete") as caught:
        registry.get("files.delete")
    assert isinstance(caught.value, KeyError)


def test_builtin_registry_is_closed_sorted_and_cached() -> None:
    registry = build_registry()
    assert registry.closed
    assert registry.names() == BUILTIN_NAMES
    assert "files.copy" in registry and "files.delete" not in registry
    assert build_registry(BUILTIN_MODULES) is registry
    assert build_registry(list(BUILTIN_MODULES)) is registry


def test_a_module_without_actions_is_refused() -> None:
    with pytest.raises(RegistrationError, match="ACTIONS"):
        build_registry(("json",))


def test_catalog_describes_every_action() -> None:
    catalog = build_registry().catalog()
    assert [entry["name"] for entry in catalog] == BUILTIN_NAMES
    copy = next(entry for entry in catalog if entry["name"] == "files.copy")
    assert copy["risk"] == "medium"
    assert copy["idempotent"] is True
    assert copy["category"] == "files"
    assert copy["default_timeout_s"] == 60
    assert copy["description"]
    assert copy["params_schema"]["additionalProperties"] is False
    assert set(copy["params_schema"]["properties"]) == {
        "source",
        "destination",
        "overwrite",
        "create_dirs",
    }
    assert copy["params_schema"]["required"] == ["source", "destination"]
    assert set(copy["output_schema"]["properties"]) == {"destination", "sha256", "bytes"}


def test_every_builtin_action_refuses_unknown_params() -> None:
    for action_cls in build_registry():
        assert action_cls.Params.model_config.get("extra") == "forbid"


def test_context_hides_secrets_and_forbids_unknown_fields() -> None:
    ctx = ActionContext(
        run_id=1,
        step_id=1,
        node_id="n",
        attempt=1,
        idempotency_key="k",
        evidence_dir="/tmp/e",
        secrets={"HR_PASSWORD": "hunter2"},
    )
    assert "hunter2" not in repr(ctx) + str(ctx) + ctx.model_dump_json()
    assert ctx.secret("HR_PASSWORD") == "hunter2"
    with pytest.raises(ActionFailed, match="IT_TOKEN"):
        ctx.secret("IT_TOKEN")
    with pytest.raises(ValueError):
        ActionContext(
            run_id=1,
            step_id=1,
            node_id="n",
            attempt=1,
            idempotency_key="k",
            evidence_dir="/tmp/e",
            surprise=True,  # type: ignore[call-arg]
        )


def test_context_policy_is_an_immutable_copy() -> None:
    ctx = ActionContext(
        run_id=1,
        step_id=1,
        node_id="n",
        attempt=1,
        idempotency_key="k",
        evidence_dir="/e",
        files_roots=["/data"],
        allowed_hosts=["hr.local"],
    )
    assert ctx.policy() == Policy(files_roots=("/data",), allowed_hosts=("hr.local",))


def test_needs_input_defaults_to_every_field_required() -> None:
    exc = NeedsInput("pick one", fields={"a": {"type": "string"}, "b": {"type": "integer"}})
    assert exc.to_dict() == {
        "message": "pick one",
        "fields": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "state": {},
    }
    assert str(exc) == "pick one"


def test_default_policy_errors_are_empty() -> None:
    assert make_action().policy_errors({"text": "x"}, Policy()) == []
