"""What a spare child does before its request: its temp folder, its warm-up.

The zygote forks spares ahead of time (see ``executors.zygote``). Every
spare gets a temp folder of its own; a spare of a family with a warm-up
(the browser actions) runs it first, so the action it later becomes
starts with its browser already running.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import Any

from executors.child import RESULT_FD

__all__ = ["child_tmp", "family_of", "use_own_tmp", "warm_up_spare"]


def child_tmp(pid: int) -> str:
    """Return the temp folder of the action child ``pid`` (under the zygote's home)."""
    return os.path.join(os.environ.get("HOME") or tempfile.gettempdir(), "tmp", str(pid))


def family_of(action_cls: Any) -> str:
    """Return the name of an action's warm-up ("" when it has none)."""
    warm_up = action_cls.warm_up
    if warm_up is None:
        return ""
    return f"{warm_up.__module__}.{warm_up.__qualname__}"


def use_own_tmp() -> None:
    """Point TMPDIR at this child's own folder, removed when it exits.

    A killed browser never cleans up its profile and artifacts folders;
    the zygote removes the whole folder when it reaps the child.
    """
    os.environ["TMPDIR"] = child_tmp(os.getpid())
    os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    tempfile.tempdir = None


def warm_up_spare(warm_up: Callable[[], None]) -> set[int]:
    """Run a family's warm-up in a spare; return the fds it opened.

    Those are kept open when the spare becomes a child (they are its
    pipes to the browser it started). fds 0-3 are about to be replaced
    by the request's, so fd 3 is held first: the warm-up must not get it.
    A warm-up that fails leaves the action to do the work itself.
    """
    held = None
    try:
        os.fstat(RESULT_FD)
    except OSError:
        held = os.open(os.devnull, os.O_RDONLY)
        if held != RESULT_FD:
            os.dup2(held, RESULT_FD)
            os.close(held)
    before = _open_fds()
    with contextlib.suppress(Exception):
        warm_up()
    return _open_fds() - before


def _open_fds() -> set[int]:
    """Return the fds open now (not the one listing them used)."""
    listed = [int(fd) for fd in os.listdir("/proc/self/fd")]
    open_now = set()
    for fd in listed:
        with contextlib.suppress(OSError):
            os.fstat(fd)
            open_now.add(fd)
    return open_now
