"""Fixtures for tests that drive the portals in a real Chromium.

Registered for every test through ``pytest_plugins`` in tests/conftest.py;
they serve the portals from pytest-django's live server (a real
socket on a free port) and point AGENTOS_PORTAL_BASE_URL at it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from executors.base import ActionContext
from executors.runner import ActionResult, Runner

__all__ = [
    "chromium_family",
    "parent_of",
    "portals",
    "run_action",
    "spare_children",
    "spare_chromium",
]


@pytest.fixture
def portals(transactional_db, live_server, settings, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """Serve the portals with demo accounts and catalog; return the base URL."""
    from portals.demo import ensure_demo_data

    settings.AGENTOS_PORTAL_BASE_URL = live_server.url
    settings.MEDIA_ROOT = tmp_path / "media"  # evidence of this test only
    ensure_demo_data(settings.AGENTOS_SECRETS)
    return str(live_server.url)


@pytest.fixture
def run_action(portals: str, tmp_path: Path) -> Callable[..., ActionResult]:
    """Run a browser action in the engine's runner, with a step's context."""
    from django.conf import settings

    from workflows import executor_config

    def run(
        name: str,
        params: dict[str, Any],
        *,
        key: str = "run1-node-0",
        secrets: dict[str, str] | None = None,
        timeout_s: float = 60,
        heartbeat: Callable[[], bool] | None = None,
        heartbeat_every_s: float = 5.0,
        runner: Runner | None = None,
        **ctx_fields: Any,
    ) -> ActionResult:
        evidence = tmp_path / f"evidence-{len(list(tmp_path.glob('evidence-*')))}"
        evidence.mkdir()
        ctx = ActionContext(
            run_id=1,
            step_id=1,
            node_id="node",
            attempt=1,
            idempotency_key=key,
            evidence_dir=str(evidence),
            allowed_origins=[portals],
            portal_base_url=portals,
            browser_executable=settings.AGENTOS_BROWSER_EXECUTABLE,
            secrets=executor_config.secrets_for(name) if secrets is None else secrets,
            **ctx_fields,
        )
        return (runner or executor_config.runner()).run(
            name,
            params,
            ctx,
            timeout_s=timeout_s,
            heartbeat=heartbeat,
            heartbeat_every_s=heartbeat_every_s,
        )

    return run


def chromium_family(zygote_pid: int | None) -> dict[int, str]:
    """Return live Chromium processes whose session an action of this zygote leads.

    Playwright starts Chromium in a session of its own, so the browser is
    found by its parent chain: node driver <- action child <- zygote. The
    browser a spare child started ahead of its request belongs to no action
    yet and is left out (see ``spare_chromium``).
    """
    return {
        pid: cmd
        for pid, cmd in _chromium_under(zygote_pid).items()
        if not _is_spare(_child_of(pid, zygote_pid))
    }


def spare_chromium(zygote_pid: int | None) -> dict[int, str]:
    """Return live Chromium processes that spares started ahead of a request."""
    return {
        pid: cmd
        for pid, cmd in _chromium_under(zygote_pid).items()
        if _is_spare(_child_of(pid, zygote_pid))
    }


def spare_children(zygote_pid: int | None) -> list[int]:
    """Return the zygote's children still waiting for a request, and the
    light zygote's (a child of the main one, waiting on /dev/null like a
    spare: its children are the plain actions' spares)."""
    spares = [pid for pid in _children(zygote_pid) if _is_spare(pid)]
    return [*spares, *(pid for spare in spares for pid in _children(spare) if _is_spare(pid))]


def _children(pid: int | None) -> list[int]:
    if pid is None:
        return []
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


def _is_spare(pid: int | None) -> bool:
    """Return whether a zygote's child is still waiting for its request.

    A spare's stdin is the zygote's /dev/null; a child that took a request
    reads it from a pipe.
    """
    try:
        return pid is not None and os.readlink(f"/proc/{pid}/fd/0") == os.devnull
    except OSError:
        return False


def _child_of(pid: int, zygote_pid: int | None) -> int | None:
    """Return the zygote's child that ``pid`` descends from."""
    for _ in range(64):
        ppid = parent_of(pid)
        if ppid is None or ppid <= 1:
            return None
        if ppid == zygote_pid:
            return pid
        pid = ppid
    return None


def parent_of(pid: int) -> int | None:
    """Return the parent of ``pid``, or None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _chromium_under(zygote_pid: int | None) -> dict[int, str]:
    found: dict[int, str] = {}
    if zygote_pid is None:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The whole command line: helpers the browser execs (zygotes, GPU and
        # network processes) carry their --type= as separate arguments.
        cmdline = " ".join(arg.decode(errors="replace") for arg in argv)
        if "chrom" not in argv[0].decode(errors="replace") or stat.rsplit(")", 1)[1].split()[
            0
        ] in ("Z", "X"):
            continue
        if _has_ancestor(pid, zygote_pid):
            found[pid] = cmdline
    return found


def _has_ancestor(pid: int, ancestor: int) -> bool:
    for _ in range(64):
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if ppid == ancestor:
            return True
        if ppid <= 1:
            return False
        pid = ppid
    return False
