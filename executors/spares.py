"""What a spare child does before its request: its temp folder, its warm-up.

The zygote forks spares ahead of time (see ``executors.zygote``). Every
spare gets a temp folder of its own; a spare of a family with a warm-up
(the browser actions) runs it first, so the action it later becomes
starts with its browser already running.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentos_common.folders import FolderPool, claim
from executors.attempt import killpg
from executors.child import RESULT_FD

__all__ = [
    "SPARES_FILE",
    "Pools",
    "Spare",
    "child_tmp",
    "tmp_pool",
    "warm_up_key",
    "use_own_tmp",
    "warm_up_spare",
]

# In the zygote's home: how many warm-up spares are ready now, written by
# the zygote when it changes and read by Runner.ready_spares.
SPARES_FILE = "spares-ready"

# A warm-up family's pool is refilled only after it ran nothing this long.
REFILL_IDLE_S = 0.3


@dataclass
class Spare:
    """A child forked ahead of time, waiting on ``control`` for a request.

    ``family`` names the warm-up it ran first ("" for none): a spare of the
    browser actions has its own Chromium running before any request.
    """

    pid: int
    pidfd: int
    control: socket.socket
    family: str = ""
    # Warm-up done (it said so on ``control``); a family without one is
    # ready at once.
    ready: bool = False

    def discard(self) -> None:
        """Kill, reap and forget an idle spare."""
        # Closing the socket alone ends a spare blocked in recv; the kill
        # covers one that has not got that far (and is maybe not yet its own
        # group leader, which killpg handles by falling back to the pid).
        self.control.close()
        killpg(self.pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        os.close(self.pidfd)


class Pools:
    """The zygote's spares by family, oldest first, and when to refill them.

    Plain actions have one spare, forked again by the zygote at each
    request. A warm-up family keeps ``size`` spares: refilled one at a time
    once it has run nothing for REFILL_IDLE_S (so starting browsers does not
    compete with the actions using them), and at once when a request drains
    it (so under sustained load every request still finds one started).
    A family that ran nothing for ``retire_after_s`` (0: never) gives its
    spares up and is not refilled until its next request: an idle portal
    holds no browser.
    """

    def __init__(self, size: int, retire_after_s: float = 0.0) -> None:
        self.size = max(0, size)
        self.retire_after_s = max(0.0, retire_after_s)
        self._spares: dict[str, list[Spare]] = {}
        # Warm-up families used so far, and when each last went idle.
        self._idle_since: dict[str, float] = {}
        # ...and when each last went idle or had a spare get ready: the
        # retire clock starts once the pool has stopped changing.
        self._still_since: dict[str, float] = {}

    def add(self, spare: Spare) -> None:
        self._spares.setdefault(spare.family, []).append(spare)

    def remove(self, spare: Spare) -> None:
        pool = self._spares.get(spare.family) or []
        if spare in pool:
            pool.remove(spare)

    def count(self, family: str) -> int:
        """Return how many spares ``family`` holds, ready or warming."""
        return len(self._spares.get(family) or [])

    def all(self) -> list[Spare]:
        return [spare for pool in self._spares.values() for spare in pool]

    def clear(self) -> None:
        self._spares.clear()
        self._still_since.clear()

    def take(self, family: str) -> Spare | None:
        """Pop the family's oldest ready spare, else its oldest one still warming."""
        pool = self._spares.get(family) or []
        spare = next((s for s in pool if s.ready), pool[0] if pool else None)
        if spare is not None:
            pool.remove(spare)
        return spare

    def used(self, family: str) -> bool:
        """Note that a warm-up family ran a request; say if it needs a spare now."""
        self._idle_since.setdefault(family, 0.0)
        return self.size > 0 and not self._spares.get(family)

    def went_idle(self, family: str) -> None:
        self._idle_since[family] = self._still_since[family] = time.monotonic()

    def got_ready(self, spare: Spare) -> None:
        """Note a spare's warm-up done (it restarts its family's retire clock)."""
        spare.ready = True
        if spare.family in self._still_since:
            self._still_since[spare.family] = time.monotonic()

    def ready_count(self) -> int:
        """Return how many warm-up spares are ready now (a browser each)."""
        return sum(1 for spare in self.all() if spare.family and spare.ready)

    def retire_wait(self, busy: Callable[[str], bool]) -> float | None:
        """Return how long until an idle family's spares are due to retire, or None."""
        if not self.retire_after_s:
            return None
        waits = [
            max(0.0, since + self.retire_after_s - time.monotonic())
            for family, since in self._still_since.items()
            if self._still(family, busy)
        ]
        return min(waits) if waits else None

    def retire(self, busy: Callable[[str], bool]) -> list[Spare]:
        """Forget the families idle for ``retire_after_s``; return their spares to discard.

        A retired family is refilled only after its next request (see
        ``used``), as on its first.
        """
        if not self.retire_after_s:
            return []
        now = time.monotonic()
        retired: list[Spare] = []
        for family, since in list(self._still_since.items()):
            if self._still(family, busy) and now - since >= self.retire_after_s:
                del self._still_since[family]
                self._idle_since.pop(family, None)
                retired += self._spares.pop(family, [])
        return retired

    def refill_wait(self, busy: Callable[[str], bool]) -> float | None:
        """Return how long until a pool is due a refill, or None.

        None too while a spare of the family is still warming: its "ready"
        message wakes the zygote, which must not spin until then.
        """
        waits = [
            max(0.0, since + REFILL_IDLE_S - time.monotonic())
            for family, since in self._idle_since.items()
            if self._short(family, busy)
        ]
        return min(waits) if waits else None

    def due(self, busy: Callable[[str], bool]) -> list[str]:
        """Return the families to fork one more spare for now.

        One at a time: the next is forked once this one is ready, so a
        refill takes one core at most while the machine is otherwise idle.
        """
        now = time.monotonic()
        return [
            family
            for family, since in self._idle_since.items()
            if self._short(family, busy) and now - since >= REFILL_IDLE_S
        ]

    def _still(self, family: str, busy: Callable[[str], bool]) -> bool:
        """Whether a family runs nothing and has no spare warming (its ready message
        would wake the zygote, and restart the retire clock)."""
        return not busy(family) and all(s.ready for s in self._spares.get(family) or [])

    def _short(self, family: str, busy: Callable[[str], bool]) -> bool:
        """Whether an idle family lacks spares and none is warming now."""
        pool = self._spares.get(family) or []
        return len(pool) < self.size and not busy(family) and all(spare.ready for spare in pool)


def child_tmp(pid: int) -> str:
    """Return the temp folder of the action child ``pid`` (under the zygote's home)."""
    return os.path.join(_home(), "tmp", str(pid))


def tmp_pool() -> FolderPool:
    """Return the zygote's pool of emptied temp folders (``agentos_common.folders``).

    Parked beside ``tmp`` in the zygote's home, where only the zygote's user
    can look: the action user reaches its own folder through ``tmp`` alone.
    """
    return FolderPool(os.path.join(_home(), "tmp-free"))


def _home() -> str:
    return os.environ.get("HOME") or tempfile.gettempdir()


def warm_up_key(action_cls: Any) -> str:
    """Return the name of an action's warm-up ("" when it has none)."""
    warm_up = action_cls.warm_up
    if warm_up is None:
        return ""
    return f"{warm_up.__module__}.{warm_up.__qualname__}"


def use_own_tmp(reserved: str | None = None) -> None:
    """Point TMPDIR at this child's own folder, removed when it exits.

    A killed browser never cleans up its profile and artifacts folders;
    the zygote removes the whole folder when it reaps the child (or parks
    it, empty, for a later child: ``reserved`` is one such, kept for us).
    """
    os.environ["TMPDIR"] = child_tmp(os.getpid())
    if not os.path.isdir(os.environ["TMPDIR"]):
        os.makedirs(os.path.dirname(os.environ["TMPDIR"]), exist_ok=True)
        claim(reserved, os.environ["TMPDIR"])
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
