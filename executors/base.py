"""The contract every executor action follows.

An action is a small command class: a dotted name, a pydantic ``Params``
model that forbids unknown keys, an ``Output`` model, and ``run``. Actions
run in a forked child process (see ``executors.runner``), so nothing here
may import Django or any project app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Action",
    "ActionContext",
    "ActionFailed",
    "NeedsInput",
    "Policy",
    "Risk",
    "is_template",
]

Risk = Literal["low", "medium", "high"]


class ActionFailed(Exception):
    """Report an expected failure; ``str(exc)`` is shown to users."""


class NeedsInput(Exception):
    """Pause the run because the action found a value missing.

    ``fields`` is a JSON Schema ``properties`` object describing what a
    person must fill in; ``state`` is JSON-able data the step needs to carry
    on later (for example the URL of the half-filled form).
    """

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, Any],
        required: list[str] | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields)
        # An action asks for fields because it cannot go on without them,
        # so unless told otherwise every asked-for field is required.
        self.required = list(fields) if required is None else list(required)
        self.state = dict(state or {})

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able request the runner hands to the engine."""
        return {
            "message": self.message,
            "fields": self.fields,
            "required": self.required,
            "state": self.state,
        }


@dataclass(frozen=True)
class Policy:
    """Hold the limits a run's actions must stay within."""

    files_roots: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Secret name -> the origins it may be sent to (AGENTOS_SECRET_HOSTS_*).
    secret_hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()


class ActionContext(BaseModel):
    """Carry what an action may know about the step it runs in."""

    model_config = ConfigDict(extra="forbid")

    run_id: int
    step_id: int
    node_id: str
    attempt: int
    idempotency_key: str
    evidence_dir: str
    files_roots: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)
    secret_hosts: dict[str, list[str]] = Field(default_factory=dict)
    portal_base_url: str = ""
    browser_executable: str = ""
    # Kept out of repr(), str() and model_dump(), so logging or storing a
    # context cannot leak them; the runner adds them explicitly to what
    # it writes on the child's stdin.
    secrets: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    resume_state: dict[str, Any] | None = None
    resume_values: dict[str, Any] | None = None
    # The run's correlation id (its events carry it too): for the action's
    # own logs and the calls it makes (docs/observability.md).
    correlation_id: str = ""

    def secret(self, name: str) -> str:
        """Return the named secret, or fail naming the missing one."""
        try:
            return self.secrets[name]
        except KeyError:
            raise ActionFailed(f"secret {name!r} is not configured") from None

    def policy(self) -> Policy:
        """Return the step's limits as an immutable ``Policy``."""
        return Policy(
            files_roots=tuple(self.files_roots),
            allowed_hosts=tuple(self.allowed_hosts),
            allowed_origins=tuple(self.allowed_origins),
            secret_hosts=tuple((k, tuple(v)) for k, v in sorted(self.secret_hosts.items())),
        )


class Action:
    """Base class of all actions; subclasses are registered, not instantiated
    by callers.

    The docstring of a subclass should say what the action touches.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    category: ClassVar[str]
    risk: ClassVar[Risk]
    idempotent: ClassVar[bool]
    default_timeout_s: ClassVar[float] = 60
    # None lifts RLIMIT_AS entirely: browsers reserve far more address
    # space than they ever touch and die under a virtual-memory cap.
    memory_limit_mb: ClassVar[int | None] = 1024
    secrets: ClassVar[tuple[str, ...]] = ()
    # Slow set-up that needs nothing from the request (start a browser):
    # the runner's zygote calls it in a child forked ahead of time, one
    # child per request still, so the action starts with it done. Actions
    # sharing the function share that pool of one waiting child.
    warm_up: ClassVar[Callable[[], None] | None] = None
    Params: ClassVar[type[BaseModel]]
    Output: ClassVar[type[BaseModel]]

    def run(self, params: Any, ctx: ActionContext) -> BaseModel:
        """Do the work and return an ``Output`` instance."""
        raise NotImplementedError

    @classmethod
    def secret_names(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """Return the names of the secrets a step with ``params`` receives.

        By default the class's declared ``secrets``; an action whose plan
        names its secret (e.g. ``bearer_secret``) narrows it to those.
        """
        return cls.secrets

    @classmethod
    def policy_errors(cls, params: dict[str, Any], policy: Policy) -> list[tuple[str, str]]:
        """Return (field, message) pairs for literal values that break policy.

        Called by the plan validator on the params that hold no ``{{ }}``
        template, and again in the child on the validated params, so a
        value rendered from the context cannot slip past the check.
        """
        return []


def is_template(value: object) -> bool:
    """Return whether a param value still holds a ``{{ }}`` reference."""
    return isinstance(value, str) and "{{" in value
