"""A closed registry of actions, built once at start-up.

Registration validates each action class so a malformed one fails the
process at import time rather than a run at execution time; once closed,
the registry refuses new entries, so what a plan was validated against is
what the child runs.
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from executors.base import Action

__all__ = [
    "BUILTIN_MODULES",
    "NAME_PATTERN",
    "RegistrationError",
    "Registry",
    "RegistryClosed",
    "UnknownAction",
    "build_registry",
]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
RISKS = frozenset({"low", "medium", "high"})
BUILTIN_MODULES: tuple[str, ...] = (
    "executors.actions.files",
    "executors.actions.files_bulk",
    "executors.actions.excel",
    "executors.actions.api",
    "executors.actions.verify",
)

A = TypeVar("A", bound=type[Action])


class UnknownAction(KeyError):
    """Raised when no action is registered under a name."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; show the message.
        return str(self.args[0]) if self.args else "unknown action"


class RegistryClosed(RuntimeError):
    """Raised when registering into a registry that has been closed."""


class RegistrationError(ValueError):
    """Raised when an action class does not meet the action contract."""


class Registry:
    """Map action names to action classes; closed after start-up."""

    def __init__(self) -> None:
        self._actions: dict[str, type[Action]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        """Return whether the registry still accepts registrations."""
        return self._closed

    def register(self, action_cls: A) -> A:
        """Validate and add an action class; usable as a class decorator."""
        if self._closed:
            raise RegistryClosed(
                f"cannot register {getattr(action_cls, 'name', action_cls)!r}:"
                " the registry is closed"
            )
        problems = _contract_problems(action_cls)
        if not problems and action_cls.name in self._actions:
            problems.append(f"name {action_cls.name!r} is already registered")
        if problems:
            label = getattr(action_cls, "__qualname__", repr(action_cls))
            raise RegistrationError(f"{label}: " + "; ".join(problems))
        self._actions[action_cls.name] = action_cls
        return action_cls

    def close(self) -> None:
        """Refuse any further registration."""
        self._closed = True

    def get(self, name: str) -> type[Action]:
        """Return the action class registered under ``name``."""
        try:
            return self._actions[name]
        except KeyError:
            raise UnknownAction(f"unknown action {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[type[Action]]:
        return iter(self._actions[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._actions)

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._actions)

    def catalog(self) -> list[dict[str, Any]]:
        """Describe every action for planners, validators and the admin."""
        return [
            {
                "name": cls.name,
                "description": cls.description,
                "category": cls.category,
                "risk": cls.risk,
                "idempotent": cls.idempotent,
                "default_timeout_s": cls.default_timeout_s,
                "memory_limit_mb": cls.memory_limit_mb,
                "secrets": list(cls.secrets),
                "params_schema": cls.Params.model_json_schema(),
                "output_schema": cls.Output.model_json_schema(),
            }
            for cls in self
        ]


def _contract_problems(cls: object) -> list[str]:
    """Return every way ``cls`` breaks the action contract, at once."""
    if not (inspect.isclass(cls) and issubclass(cls, Action)):
        return [f"{cls!r} is not an Action subclass"]
    problems: list[str] = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(f"name {name!r} must look like 'family.verb' ({NAME_PATTERN.pattern})")
    description = getattr(cls, "description", None)
    if not isinstance(description, str) or not description.strip():
        problems.append("description must be a non-empty string")
    category = getattr(cls, "category", None)
    if not isinstance(category, str) or not category.strip():
        problems.append("category must be a non-empty string")
    if getattr(cls, "risk", None) not in RISKS:
        problems.append(f"risk must be one of {sorted(RISKS)}")
    if not isinstance(getattr(cls, "idempotent", None), bool):
        problems.append("idempotent must be True or False")
    timeout = getattr(cls, "default_timeout_s", None)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or (timeout <= 0):
        problems.append("default_timeout_s must be a positive number")
    memory = cls.memory_limit_mb
    if memory is not None and (
        isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0
    ):
        problems.append("memory_limit_mb must be a positive int or None")
    if not isinstance(cls.secrets, tuple) or not all(isinstance(s, str) for s in cls.secrets):
        problems.append("secrets must be a tuple of setting names")
    for attr in ("Params", "Output"):
        model = getattr(cls, attr, None)
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            problems.append(f"{attr} must be a pydantic BaseModel subclass")
        elif attr == "Params" and model.model_config.get("extra") != "forbid":
            # Unknown keys must be refused, or a typo in a plan silently
            # drops a parameter instead of failing validation.
            problems.append('Params must set model_config extra="forbid"')
    if cls.run is Action.run:
        problems.append("run() must be implemented")
    return problems


_cache: dict[tuple[str, ...], Registry] = {}
_cache_lock = threading.Lock()


def build_registry(modules: Sequence[str] = BUILTIN_MODULES) -> Registry:
    """Import ``modules``, register each one's ``ACTIONS`` and close.

    The result is cached per tuple of module names, so the web process, the
    validator and the runner share one registry.
    """
    key = tuple(modules)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        registry = Registry()
        for module_name in key:
            module = importlib.import_module(module_name)
            actions = getattr(module, "ACTIONS", None)
            if not isinstance(actions, (list, tuple)):
                raise RegistrationError(f"module {module_name!r} must define ACTIONS as a list")
            for action_cls in actions:
                registry.register(action_cls)
        registry.close()
        _cache[key] = registry
        return registry
