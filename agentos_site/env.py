"""Read settings from the environment, failing fast on bad values."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    """Return the variable's value, or the default when unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    """Return a boolean variable: 1/true/yes/on or 0/false/no/off."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1 or 0), not {raw!r}")


def env_float(name: str, default: float) -> float:
    """Return a number variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def env_int(name: str, default: int, low: int, high: int) -> int:
    """Return a whole-number variable within [low, high]."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ImproperlyConfigured(
            f"{name} must be a whole number from {low} to {high}, not {raw!r}"
        )
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated variable as a list of non-empty items."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def development_secret_key(var_dir: Path, name: str = "secret_key") -> str:
    """Return a development secret (var/<name>), generating it once."""
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_HOSTS_PREFIX = "AGENTOS_SECRET_HOSTS_"


def origin_of(url: str) -> str:
    """Return ``scheme://host:port`` of a URL (the port made explicit)."""
    from executors.actions.hosts import url_origin

    return str(url_origin(url))


def allowed_origins(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated list of origins, checking each entry's form.

    Entries are ``scheme://host[:port]`` or a bare host (its default ports);
    see ``executors.actions.hosts.parse_origins``.
    """
    from executors.actions.hosts import parse_origins

    entries = env_list(name, default)
    for entry in entries:
        try:
            parse_origins(entry)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None
    return entries
