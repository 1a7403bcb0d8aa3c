"""Park empty folders instead of removing them, and hand them out again.

Every step makes two folders that usually end empty: its evidence folder
(the engine) and its action process's temp folder (the zygote). On the
ext4 of this project's machines (mounted with ``discard``) an ``rmdir``
waits ~3 ms for the disk, where a ``rename`` costs ~15 µs and a ``mkdir``
~0.1 ms: two rmdirs were most of a no-op step's time (docs/benchmarks.md).
A :class:`FolderPool` moves an empty folder into a parking folder on the
same file system and renames it into place when the next folder is wanted.

Folders are parked only when empty, and a taken folder is exactly as a new
one would be, but for its mode and owner, which the callers set anyway
(the sandbox gives a temp folder to the action user with 0700, and shares
evidence folders before each action). Several processes may share one
parking folder: a folder is claimed by renaming it, which only one can.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil

__all__ = ["FolderPool", "claim", "is_empty"]

# Parked per pool; past it an empty folder is removed as before.
PARK_LIMIT = 8


def is_empty(path: str) -> bool:
    """Return whether ``path`` is a folder with nothing in it (False if it is gone)."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


class FolderPool:
    """Empty folders parked under ``park`` (created on first use), to reuse."""

    def __init__(self, park: str, limit: int = PARK_LIMIT) -> None:
        self.park = park
        self.limit = limit
        self._names = itertools.count()

    def take(self, path: str) -> None:
        """Make ``path`` an empty folder: a parked one renamed there, or a new one.

        Its parent must exist; ``path`` must not.
        """
        for parked in self._parked():
            try:
                os.rename(parked, path)
                return
            except FileNotFoundError:
                continue  # taken by another process meanwhile
            except OSError:
                break  # ``path`` exists, or another file system: as before
        os.mkdir(path)

    def reserve(self) -> str | None:
        """Return a parked folder for a forked child to claim with ``claim``, or None.

        The parent calls it before the fork, so no two children get the same.
        """
        for parked in self._parked():
            reserved = f"{parked}.reserved"
            try:
                os.rename(parked, reserved)
            except OSError:
                continue
            return reserved
        return None

    def give(self, path: str) -> None:
        """Park the folder ``path`` if it is empty and there is room; else remove it."""
        if os.path.islink(path):
            # Only a real folder is ever handed out again.
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        if not is_empty(path):
            shutil.rmtree(path, ignore_errors=True)
            return
        if len(self._parked()) < self.limit:
            target = os.path.join(self.park, f"{os.getpid()}-{next(self._names)}")
            for attempt in range(2):
                try:
                    os.rename(path, target)
                    return
                except FileNotFoundError:
                    if attempt:
                        break
                    if not os.path.isdir(path):
                        return  # gone meanwhile: nothing to park or remove
                    # The park itself is missing: made on first use.
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(self.park, 0o700)
                except OSError:
                    break
        with contextlib.suppress(OSError):
            os.rmdir(path)

    def _parked(self) -> list[str]:
        try:
            with os.scandir(self.park) as entries:
                return [
                    entry.path
                    for entry in entries
                    if not entry.name.endswith(".reserved") and entry.is_dir(follow_symlinks=False)
                ]
        except OSError:
            return []


def claim(reserved: str | None, path: str) -> None:
    """Make ``path`` an empty folder from a reserved one (``FolderPool.reserve``), or anew."""
    if reserved is not None:
        try:
            os.rename(reserved, path)
            return
        except OSError:
            pass
    os.makedirs(path, exist_ok=True)
