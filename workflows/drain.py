"""Drain: a worker asked to stop takes no new task and lets its step end.

The worker command (``workflows.cluster``) creates one shared value before
it forks django-q2's sentinel, so every worker process it spawns reads the
same flag: 0 while the cluster works, else the wall-clock time until which
a step in flight may still run. The engine checks it between steps (it
re-queues the run and gives its lease back, so another worker resumes it at
once) and in each action's heartbeat (past the bound, the action is killed
and its step is left to the next worker, as after a crash). Outside the
worker command (tests, ``manage.py qcluster``) nothing is shared and the
flag is never raised.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.sharedctypes import Synchronized

_deadline: Synchronized | None = None


def install() -> None:
    """Create the shared flag; call in the main process before any fork."""
    global _deadline
    _deadline = multiprocessing.get_context("fork").Value("d", 0.0)


def begin(*, bound_s: float) -> float:
    """Raise the flag: steps in flight may run ``bound_s`` more seconds.

    A second call only ever brings the bound closer (a second SIGTERM
    cuts the drain short); it never extends it.
    """
    assert _deadline is not None, "drain.install() was not called"
    until = time.time() + max(0.0, bound_s)
    with _deadline.get_lock():
        if _deadline.value == 0.0 or until < _deadline.value:
            _deadline.value = until
        return float(_deadline.value)


def draining() -> bool:
    """Return True once this worker's cluster was asked to stop."""
    return _deadline is not None and _deadline.value > 0.0


def past_bound() -> bool:
    """Return True when a step still running must be cut now."""
    return draining() and time.time() >= _deadline.value  # type: ignore[union-attr]
