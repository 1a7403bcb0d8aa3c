"""Run actions as an unprivileged user of their own, within resource limits.

An action runs third-party code (Chromium, pandas, whatever a plan points
at), so it must not be able to read what the worker holds: the worker's
environment (every secret, DJANGO_SECRET_KEY) through
``/proc/<pid>/environ``, the SQLite file, the secret key file. When the
worker runs as root and the action user exists (``scripts/setup.sh``
creates ``agentos-action``), each action child drops to that user
(setgroups, setgid, setuid) right after the fork, before it reads its
request or starts a browser. A worker that is not root cannot change user:
actions then run as the worker's user, with the limits below only (see
docs/security.md).

What the actions must write is shared with the user's group: the file
roots and the evidence (media) folder are given to the group, setgid, with
group write; the worker's processes create files with umask 007, so what
they add later stays writable by the group and unreadable by anyone else.
Each child's TMPDIR (its browser profile) belongs to the user.

Limits, per action process and inherited by everything it starts:
RLIMIT_FSIZE (largest file), RLIMIT_CPU (CPU seconds), RLIMIT_DATA for
browsers (RLIMIT_AS would kill Chromium, which reserves far more address
space than it uses; RLIMIT_DATA counts only memory it can write), and,
when the user is dropped, RLIMIT_NPROC (counted over all processes of the
action user: every worker's actions together).

No Django here: the runner and the zygote import this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import resource
import signal
import stat
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

__all__ = [
    "DEFAULT_USER",
    "Sandbox",
    "grant_search",
    "share_dirs",
    "unreachable",
]

DEFAULT_USER = "agentos-action"
# A value of AGENTOS_ACTION_USER that turns the change of user off.
NO_USER = ("", "none")
MB = 1024 * 1024


@dataclass(frozen=True)
class Sandbox:
    """Who actions run as and the limits they run within.

    ``uid``/``gid`` are filled by :meth:`resolve` when the change of user is
    possible (root, the user exists); otherwise they stay None and actions
    run as the worker's user.
    """

    user: str = DEFAULT_USER
    max_processes: int = 4096
    max_file_mb: int = 1024
    max_cpu_s: int = 900
    browser_memory_mb: int = 2048
    uid: int | None = None
    gid: int | None = None

    def resolve(self) -> Sandbox:
        """Return this sandbox with the user's ids, when actions can drop to it."""
        if self.user in NO_USER or os.geteuid() != 0:
            return replace(self, uid=None, gid=None)
        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            return replace(self, uid=None, gid=None)
        if entry.pw_uid == 0:
            return replace(self, uid=None, gid=None)
        return replace(self, uid=entry.pw_uid, gid=entry.pw_gid)

    @property
    def drops(self) -> bool:
        """Whether actions run as the action user (else as the worker's)."""
        return self.uid is not None and self.gid is not None

    def to_arg(self) -> str:
        """Encode for the zygote's command line (no secrets in it)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_arg(cls, raw: str) -> Sandbox:
        return cls(**json.loads(raw))

    # -- in the action child -------------------------------------------------

    def apply_limits(self) -> None:
        """Set this process's limits; what it starts inherits them."""
        _lower(resource.RLIMIT_CORE, 0)
        _lower(resource.RLIMIT_FSIZE, self.max_file_mb * MB)
        # A write past the limit fails with EFBIG (an error the action
        # reports) instead of killing the process with SIGXFSZ.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _lower(resource.RLIMIT_CPU, self.max_cpu_s)

    def limit_browser_memory(self) -> None:
        """Cap each process's writable memory (an action with no RLIMIT_AS)."""
        _lower(resource.RLIMIT_DATA, self.browser_memory_mb * MB)

    def drop(self, home_tmp: str | None) -> None:
        """Become the action user for good; give it ``home_tmp`` first.

        Also points the XDG folders into ``home_tmp``: the zygote's HOME is
        the worker's (root's) and not writable by the user.
        """
        if not self.drops:
            return
        assert self.uid is not None and self.gid is not None
        if home_tmp:
            os.chown(home_tmp, self.uid, self.gid)
            os.chmod(home_tmp, 0o700)
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)
        if os.getuid() != self.uid or os.geteuid() != self.uid:  # pragma: no cover
            raise RuntimeError("could not change to the action user")
        _lower(resource.RLIMIT_NPROC, self.max_processes)
        os.umask(0o007)
        os.environ["USER"] = os.environ["LOGNAME"] = self.user
        if home_tmp:
            os.environ["XDG_CONFIG_HOME"] = os.path.join(home_tmp, ".config")
            os.environ["XDG_CACHE_HOME"] = os.path.join(home_tmp, ".cache")


def _lower(which: int, value: int) -> None:
    """Set a soft and hard limit, never above the current hard limit."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


# -- in the worker (root), before each action ---------------------------------


def share_dirs(paths: Iterable[str], gid: int) -> None:
    """Give each folder tree to group ``gid``, group-writable and setgid.

    The setgid bit makes what is created inside later belong to the group
    too; the umask 007 of the worker's processes keeps it group-writable.
    Each folder's ancestors get search permission (``o+x``) where they lack
    it: the user must be able to reach the folder, not list what is beside.
    A folder that is shared already is not walked again (called before
    every action): what was added to it since inherited the group.
    """
    for top in paths:
        if not os.path.isdir(top):
            continue  # a missing root is the action's to report, not ours to make
        grant_search(os.path.dirname(os.path.abspath(top)))
        if _is_shared(top, gid):
            continue
        for folder, dirs, files in os.walk(top):
            _share(folder, gid, directory=True)
            for name in files:
                _share(os.path.join(folder, name), gid, directory=False)
            # Never follow a link out of the tree (os.walk lists links to
            # folders among ``dirs`` but does not enter them).
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]


def _is_shared(path: str, gid: int) -> bool:
    info = os.stat(path)
    want = stat.S_IRWXG | stat.S_ISGID
    return info.st_gid == gid and info.st_mode & want == want


def _share(path: str, gid: int, *, directory: bool) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        return
    want = stat.S_IRGRP | stat.S_IWGRP
    if directory:
        want |= stat.S_IXGRP | stat.S_ISGID
    if info.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
    if info.st_mode & want != want:
        os.chmod(path, stat.S_IMODE(info.st_mode) | want)


def grant_search(path: str) -> list[str]:
    """Give ``o+x`` to ``path`` and its ancestors that lack it; return those."""
    changed = []
    current = os.path.abspath(path)
    while True:
        with contextlib.suppress(OSError):
            mode = os.stat(current).st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(current, stat.S_IMODE(mode) | stat.S_IXOTH)
                changed.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            return changed
        current = parent


def unreachable(readable: Iterable[str]) -> list[str]:
    """Return the folders this process cannot read; run after the drop."""
    return [f"cannot read {p}" for p in readable if not os.access(p, os.R_OK | os.X_OK)]


def runtime_paths() -> list[str]:
    """Return the folders an action child imports code from."""
    import pydantic

    from executors.scrubbing import PROJECT_DIR

    return [
        os.path.dirname(os.__file__),
        os.path.dirname(os.path.dirname(pydantic.__file__)),
        PROJECT_DIR,
    ]


def main(argv: list[str]) -> int:
    """``python -m executors.sandbox USER``: let USER reach the code it runs.

    Run by scripts/setup.sh as root after it creates the user: grants
    search permission on the ancestors of the interpreter's library, the
    installed packages and the project (a Python under /root is common).
    """
    user = argv[0] if argv else DEFAULT_USER
    sandbox = Sandbox(user=user).resolve()
    if not sandbox.drops:
        print(f"actions run as the worker's user (not root, or no user {user!r})")
        return 0
    for path in runtime_paths():
        for changed in grant_search(path):
            print(f"granted search (o+x) on {changed} to reach {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
