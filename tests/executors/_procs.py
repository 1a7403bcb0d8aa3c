"""Look at processes through /proc, treating zombies as gone.

PID 1 on these machines does not reap orphans, so a killed process can
linger as ``<defunct>``; for "is it still running" that counts as gone.
"""

from __future__ import annotations

import os


def state(pid: int) -> str | None:
    """Return the one-letter state of ``pid``, or None if it has no entry."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may contain spaces and parens; the state follows
    # the last ")".
    return stat.rsplit(")", 1)[1].split()[0]


def parent_of(pid: int) -> int | None:
    """Return the parent pid of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def is_gone(pid: int) -> bool:
    """Return whether ``pid`` no longer runs (absent, zombie or dead)."""
    return state(pid) in (None, "Z", "X")


def descendants(pid: int) -> list[int]:
    """Return the live descendants of ``pid``, nearest first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = parent_of(int(entry))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            if not is_gone(child):
                found.append(child)
                queue.append(child)
    return found


def read_proc(pid: int, name: str) -> bytes:
    """Return the raw bytes of ``/proc/<pid>/<name>``."""
    with open(f"/proc/{pid}/{name}", "rb") as handle:
        return handle.read()
