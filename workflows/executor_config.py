"""The executors as this deployment configures them: registry, policy, runner, secrets."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from executors.base import Policy
from executors.registry import PLUGIN_GROUP, Registry, build_registry
from executors.runner import Runner, get_runner
from executors.sandbox import Sandbox


@cache
def registry() -> Registry:
    """Return the closed registry of the modules named in settings, plus the
    installed packages' actions unless AGENTOS_ACTION_PLUGINS is off."""
    return build_registry(tuple(settings.AGENTOS_ACTION_MODULES), plugin_group=plugin_group())


def plugin_group() -> str | None:
    """Return the entry-point group actions are loaded from, or None."""
    return PLUGIN_GROUP if settings.AGENTOS_ACTION_PLUGINS else None


def policy() -> Policy:
    """Return the red lines the plan validator and the runner enforce."""
    return Policy(
        files_roots=tuple(settings.AGENTOS_FILES_ROOTS),
        allowed_hosts=tuple(settings.AGENTOS_API_ALLOWED_HOSTS),
        allowed_origins=(settings.AGENTOS_PORTAL_BASE_URL.rstrip("/"),),
        secret_hosts=tuple(
            (name, tuple(origins))
            for name, origins in sorted(settings.AGENTOS_SECRET_HOSTS.items())
        ),
    )


def runner() -> Runner:
    """Return this process's action runner (a pre-forked zygote)."""
    return get_runner(
        tuple(settings.AGENTOS_ACTION_MODULES),
        python_path=(str(settings.BASE_DIR),),
        warm_spares=settings.AGENTOS_BROWSER_SPARES,
        retire_spares_s=settings.AGENTOS_BROWSER_SPARES_IDLE_S,
        sandbox=sandbox(),
        plugin_group=plugin_group(),
    )


_extra_runners: dict[int, list[Runner]] = {}


def runners(count: int) -> list[Runner]:
    """Return `count` runners of this process: its own, then extra ones.

    A runner runs one action at a time (one zygote, one socket); a parallel
    block runs several at once, each on a runner of its own. The extras keep
    no warm browsers: their zygotes cost tens of ms and a few MB each, and
    they live as long as the process.
    """
    import os

    extra = _extra_runners.setdefault(os.getpid(), [])
    while len(extra) < count - 1:
        extra.append(
            Runner(
                tuple(settings.AGENTOS_ACTION_MODULES),
                python_path=(str(settings.BASE_DIR),),
                warm_spares=0,
                sandbox=sandbox(),
                plugin_group=plugin_group(),
            )
        )
    return [runner(), *extra[: count - 1]]


def sandbox() -> Sandbox:
    """Return whom actions run as and their limits."""
    return Sandbox(
        user=settings.AGENTOS_ACTION_USER,
        max_processes=settings.AGENTOS_ACTION_MAX_PROCESSES,
        max_file_mb=settings.AGENTOS_ACTION_MAX_FILE_MB,
        max_cpu_s=settings.AGENTOS_ACTION_MAX_CPU_S,
        browser_memory_mb=settings.AGENTOS_ACTION_BROWSER_MEMORY_MB,
    )


def secrets_for(action_name: str, params: dict | None = None) -> dict[str, str]:
    """Return the secret values a step may read, by setting name.

    The action declares them, or (e.g. HTTP actions) names them per step
    from its parameters through `secret_names`.
    """
    action = registry().get(action_name)
    names = action.secret_names(params or {}) if params is not None else action.secrets
    return {
        name: settings.AGENTOS_SECRETS[name] for name in names if name in settings.AGENTOS_SECRETS
    }


def all_secret_values() -> list[str]:
    """Return every configured secret value, for scrubbing text before it is stored."""
    return [value for value in settings.AGENTOS_SECRETS.values() if value]
