"""The audit key: required in production, generated once in development, never short."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.support.fixtures import ROOT

SETUP = "import django; django.setup()"


def settings_process(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Load the project's own settings in a fresh interpreter with this environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOS_", "DJANGO_"))}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "agentos_site.settings",
            "AGENTOS_VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SECRET_KEY": "a-secret-key-for-this-test-only-0123456789",
        },
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_key_is_required_when_debug_is_off(tmp_path: Path) -> None:
    done = settings_process(tmp_path, DJANGO_DEBUG="0")
    assert done.returncode != 0
    assert "ImproperlyConfigured: AGENTOS_AUDIT_KEY is required when DJANGO_DEBUG=0" in done.stderr
    assert not (tmp_path / "var" / "audit_key").exists()


def test_development_generates_the_key_once_into_var(tmp_path: Path) -> None:
    assert settings_process(tmp_path, DJANGO_DEBUG="1").returncode == 0
    key_file = tmp_path / "var" / "audit_key"
    key = key_file.read_text()
    assert len(key) >= 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings_process(tmp_path, DJANGO_DEBUG="1").returncode == 0
    assert key_file.read_text() == key


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    done = settings_process(tmp_path, AGENTOS_AUDIT_KEY="short")
    assert done.returncode != 0 and "at least 32 characters" in done.stderr
    done = settings_process(tmp_path, AGENTOS_AUDIT_KEY="k" * 40, AGENTOS_AUDIT_OLD_KEYS="old")
    assert done.returncode != 0 and "at least 32 characters" in done.stderr
