"""Find and kill every process of one zygote's family, wherever it now lives.

A zygote, its children and whatever they start (Playwright's driver,
Chromium and its helpers) all inherit the zygote's ``HOME``, a temp folder
unique to that zygote. When the zygote itself dies, a process that left
its action's process group (Chromium detaches with setsid) is re-parented
to init and no process group or parent link leads to it any more; this
marker still does.
"""

from __future__ import annotations

import os
import signal
import time

__all__ = ["children_of", "pids_with_home", "kill_family"]

SWEEP_FOR_S = 2.0


def children_of(pid: int) -> list[int]:
    """Return the pids of the children of ``pid``'s main thread."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(item) for item in handle.read().split()]
    except OSError:
        return []


def pids_with_home(home: str) -> list[int]:
    """Return the live pids whose environment has ``HOME=<home>`` exactly."""
    marker = b"HOME=" + os.fsencode(home)
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        # A zombie's environment reads as empty, so the dead drop out.
        if marker in environ.split(b"\0"):
            found.append(int(entry))
    return found


def kill_family(home: str) -> list[int]:
    """SIGKILL every live process of the family until none is left.

    Sweeps again while any is found: a process killed in one sweep may
    have forked just before, and its child only shows in the next one.
    Returns the pids that were killed.
    """
    killed: list[int] = []
    deadline = time.monotonic() + SWEEP_FOR_S
    while found := pids_with_home(home):
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            if pid not in killed:
                killed.append(pid)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.005)  # let the kills land before looking again
    return killed
