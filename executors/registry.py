"""A closed registry of actions, built once at start-up.

Registration validates each action class so a malformed one fails the
process at import time rather than a run at execution time; once closed,
the registry refuses new entries, so what a plan was validated against is
what the child runs.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel

from executors.base import Action

__all__ = [
    "BUILTIN_MODULES",
    "BUILTIN_PACKAGE",
    "NAME_PATTERN",
    "PLUGIN_GROUP",
    "PluginProblem",
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

# Actions from other packages: each entry point of this group names a module
# (its ACTIONS) or one action class (docs/actions.md, "Actions from other
# packages").
PLUGIN_GROUP = "agentos.actions"
# What GET /actions shows as the package of the modules named in settings.
BUILTIN_PACKAGE = "agentos"

A = TypeVar("A", bound=type[Action])


@dataclass(frozen=True)
class PluginProblem:
    """Say why one installed package's actions were left out of the registry."""

    package: str
    version: str
    entry_point: str
    message: str

    def __str__(self) -> str:
        return f"{self.package} {self.version} ({self.entry_point}): {self.message}"


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
        # Action name -> (package, version) that provided it.
        self._origins: dict[str, tuple[str, str]] = {}
        self._closed = False
        self.plugin_problems: list[PluginProblem] = []

    @property
    def closed(self) -> bool:
        """Return whether the registry still accepts registrations."""
        return self._closed

    def register(self, action_cls: A, *, package: str = "", version: str = "") -> A:
        """Validate and add an action class; usable as a class decorator.

        ``package`` and ``version`` name the distribution that provided it
        (by default this project's own).
        """
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
        self._origins[action_cls.name] = (
            package or BUILTIN_PACKAGE,
            version or _builtin_version(),
        )
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

    def origin(self, name: str) -> tuple[str, str]:
        """Return the (package, version) that provided the action ``name``."""
        self.get(name)
        return self._origins[name]

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._actions)

    def catalog(self) -> list[dict[str, Any]]:
        """Describe every action for planners, validators and the admin."""
        return [
            {
                "name": cls.name,
                "package": self._origins[cls.name][0],
                "version": self._origins[cls.name][1],
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

    def search(self, text: str) -> list[dict[str, Any]]:
        """Return the catalog entries whose name, description or category
        contain every word of ``text`` (case-insensitive)."""
        words = text.casefold().split()
        return [
            entry
            for entry in self.catalog()
            if all(
                word in f"{entry['name']} {entry['description']} {entry['category']}".casefold()
                for word in words
            )
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


_cache: dict[tuple[tuple[str, ...], str | None], Registry] = {}
_cache_lock = threading.Lock()


def build_registry(
    modules: Sequence[str] = BUILTIN_MODULES, *, plugin_group: str | None = None
) -> Registry:
    """Import ``modules``, register each one's ``ACTIONS`` and close.

    With ``plugin_group``, the actions of every installed package's entry
    points in that group are added after them (``add_plugins``). The result
    is cached per module names and group, so the web process, the validator
    and the runner share one registry.
    """
    key = (tuple(modules), plugin_group)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        registry = Registry()
        for module_name in key[0]:
            module = importlib.import_module(module_name)
            for action_cls in _module_actions(module, repr(module_name)):
                registry.register(action_cls)
        if plugin_group:
            add_plugins(registry, plugin_group)
        registry.close()
        _cache[key] = registry
        return registry


def add_plugins(registry: Registry, group: str = PLUGIN_GROUP) -> None:
    """Register the actions of every entry point in ``group``.

    A package whose entry point fails to import, names something that is not
    an action module or class, or whose actions break the contract (or clash
    with a name already taken) is left out whole and recorded in
    ``registry.plugin_problems``: one broken package must not take the
    built-ins or the other packages down with it.
    """
    for entry_point in sorted(
        importlib.metadata.entry_points(group=group), key=lambda ep: (ep.name, ep.value)
    ):
        dist = entry_point.dist
        package = dist.name if dist is not None else entry_point.value.split(".")[0]
        version = dist.version if dist is not None else "unknown"
        try:
            loaded = entry_point.load()
            if isinstance(loaded, ModuleType):
                found = _module_actions(loaded, f"entry point {entry_point.name!r}")
            else:
                found = [loaded]
            staged = Registry()
            for action_cls in found:
                if getattr(action_cls, "name", None) in registry:
                    raise RegistrationError(f"name {action_cls.name!r} is already registered")
                staged.register(action_cls, package=package, version=version)
        except (Exception, SystemExit) as exc:
            registry.plugin_problems.append(
                PluginProblem(
                    package=package,
                    version=version,
                    entry_point=f"{entry_point.name} = {entry_point.value}",
                    message=f"{type(exc).__name__}: {exc}"[:500],
                )
            )
            continue
        for action_cls in staged:
            registry.register(action_cls, package=package, version=version)


def _module_actions(module: ModuleType, label: str) -> list[type[Action]]:
    actions = getattr(module, "ACTIONS", None)
    if not isinstance(actions, (list, tuple)):
        raise RegistrationError(f"module {label} must define ACTIONS as a list")
    return list(actions)


@functools.cache
def _builtin_version() -> str:
    try:
        return importlib.metadata.version(BUILTIN_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "0"
