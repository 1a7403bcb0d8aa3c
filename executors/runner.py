"""Run one action in its own process, with a timeout, from any worker.

A :class:`Runner` keeps one long-lived zygote (``executors.zygote``) that
has imported the action modules, and asks it to fork a child per action:
a fork costs a few ms where a fresh interpreter importing pydantic costs
~50 ms. Params, context and secrets travel on the child's stdin, never in
argv or the environment; the result comes back on its own pipe, and the
child's stdout/stderr on a third, so prints cannot corrupt the result.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from executors.attempt import (
    KILL_GRACE_S,
    MAX_MESSAGE,
    ActionResult,
    Attempt,
    ExecutorUnavailable,
    Status,
)
from executors.base import ActionContext
from executors.family import kill_family
from executors.registry import BUILTIN_MODULES, UnknownAction
from executors.sandbox import Sandbox, share_dirs
from executors.scrubbing import PROJECT_DIR, scrub
from executors.spares import SPARES_FILE

__all__ = [
    "ActionResult",
    "ExecutorUnavailable",
    "Runner",
    "Status",
    "close_runners",
    "get_runner",
    "scrub",
]

ZYGOTE_START_TIMEOUT_S = 30.0
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


def zygote_environment(home: str, python_path: Sequence[str]) -> dict[str, str]:
    """Return the whole environment of the zygote and so of every action.

    Nothing is inherited but the locale, time zone and PATH: no secrets,
    no DJANGO_*, no proxies or tokens that happen to be in the worker.
    """
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env["HOME"] = home
    paths = list(dict.fromkeys([*python_path, PROJECT_DIR]))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # Only while coverage measures the test suite (scripts/test.sh): its
    # serialized settings, so the action processes are measured too.
    if "COVERAGE_PROCESS_CONFIG" in os.environ:
        env["COVERAGE_PROCESS_CONFIG"] = os.environ["COVERAGE_PROCESS_CONFIG"]
    return env


class Runner:
    """Run actions in forked children of one zygote; one run at a time."""

    def __init__(
        self,
        modules: Sequence[str] = BUILTIN_MODULES,
        *,
        python_path: Sequence[str] = (),
        warm_spares: int = 1,
        sandbox: Sandbox | None = None,
        plugin_group: str | None = None,
        retire_spares_s: float = 0.0,
    ) -> None:
        self.modules = tuple(modules)
        # The entry-point group whose packages' actions the zygote adds to
        # ``modules`` (executors.registry.add_plugins); None: modules only.
        self.plugin_group = plugin_group
        # Whom actions run as and their limits; without one, actions run as
        # this process's user with the default limits (executors.sandbox).
        self.sandbox = (sandbox or Sandbox(user="")).resolve()
        self.python_path = tuple(os.fspath(p) for p in python_path)
        # Per action family with a warm-up (a browser each): started ahead
        # of requests, refilled when idle (see executors.zygote).
        self.warm_spares = warm_spares
        # ...and given up after this long without a request (0: never).
        self.retire_spares_s = retire_spares_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        # The light zygote's socket, and the actions it runs (see
        # executors.zygote._fork_light); the rest go to the main one.
        self._light_sock: socket.socket | None = None
        self._light_actions: frozenset[str] = frozenset()
        self._light_pid: int | None = None
        self._home: str | None = None
        self._actions: frozenset[str] = frozenset()
        self._next_id = 0
        self._owner_pid = os.getpid()
        _live_runners.add(self)

    @property
    def zygote_pid(self) -> int | None:
        """Return the pid of the live zygote, if one is running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def light_zygote_pid(self) -> int | None:
        """Return the pid of the light zygote (the main zygote's child), if any."""
        return self._light_pid if self.zygote_pid is not None else None

    @property
    def ready_spares(self) -> int:
        """Return how many pre-started browsers the zygote holds ready now."""
        home = self._home
        if home is None or self.zygote_pid is None:
            return 0
        try:
            with open(os.path.join(home, SPARES_FILE)) as count:
                return int(count.read() or 0)
        except (OSError, ValueError):
            return 0  # none written yet: no spare was ever ready

    def start(self) -> None:
        """Start the zygote now rather than on the first run."""
        with self._lock:
            self._ensure_zygote()

    def actions(self) -> list[str]:
        """Return the names the zygote registered, starting it if needed."""
        self.start()
        return sorted(self._actions)

    def run(
        self,
        action: str,
        params: dict[str, Any],
        ctx: ActionContext,
        *,
        timeout_s: float,
        heartbeat: Callable[[], bool] | None = None,
        heartbeat_every_s: float = 5.0,
    ) -> ActionResult:
        """Run ``action`` in a fresh child and wait for it, or kill it.

        ``heartbeat`` is called about every ``heartbeat_every_s``; when it
        returns False (the lease is lost, the run was cancelled) the child's
        whole process group is killed and the status is ``killed``.
        """
        if timeout_s <= 0 or heartbeat_every_s <= 0:
            raise ValueError("timeout_s and heartbeat_every_s must be positive")
        wire_ctx = {**ctx.model_dump(mode="json"), "secrets": ctx.secrets}
        payload = json.dumps({"params": params, "ctx": wire_ctx}).encode()
        secrets = list(ctx.secrets.values())
        with self._lock:
            self._ensure_zygote()
            if action not in self._actions:
                raise UnknownAction(f"unknown action {action!r}")
            self._share_folders(ctx)
            return Attempt(self, action, payload, secrets).run(
                timeout_s, heartbeat, heartbeat_every_s
            )

    def close(self) -> None:
        """Stop the zygote; any running child is killed by it."""
        with self._lock:
            self._stop_zygote()

    def _share_folders(self, ctx: ActionContext) -> None:
        """Let the action user write the step's evidence folder and file roots."""
        if not self.sandbox.drops:
            return
        assert self.sandbox.gid is not None
        share_dirs([*ctx.files_roots, ctx.evidence_dir], self.sandbox.gid)

    # -- zygote lifecycle -------------------------------------------------

    def _ensure_zygote(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._stop_zygote()
        self._spawn_zygote()

    def _spawn_zygote(self) -> None:
        home = tempfile.mkdtemp(prefix="agentos-action-home-")
        if self.sandbox.drops:
            assert self.sandbox.gid is not None
            # The action user passes through HOME to its own TMPDIR in
            # HOME/tmp (executors.spares) but can list or change neither.
            os.chmod(home, 0o711)
            os.mkdir(os.path.join(home, "tmp"), 0o711)
            os.chmod(os.path.join(home, "tmp"), 0o711)
        parent_sock, zygote_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        light_sock, light_zygote_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "executors.zygote",
                    f"--warm-spares={self.warm_spares}",
                    f"--retire-spares-s={self.retire_spares_s}",
                    f"--sandbox={self.sandbox.to_arg()}",
                    *([f"--plugins={self.plugin_group}"] if self.plugin_group else []),
                    f"--light-fd={light_zygote_sock.fileno()}",
                    *self.modules,
                ],
                stdin=zygote_sock.fileno(),
                pass_fds=(light_zygote_sock.fileno(),),
                stdout=subprocess.DEVNULL,
                env=zygote_environment(home, self.python_path),
                cwd=home,
                close_fds=True,
                # Out of the worker's process group: a Ctrl-C or a group
                # kill aimed at the worker reaches the zygote only as EOF.
                start_new_session=True,
            )
        except BaseException:
            parent_sock.close()
            light_sock.close()
            shutil.rmtree(home, ignore_errors=True)
            raise
        finally:
            zygote_sock.close()
            light_zygote_sock.close()
        self._proc, self._sock, self._home = proc, parent_sock, home
        self._light_sock = light_sock
        try:
            ready, _, _ = select.select([parent_sock], [], [], ZYGOTE_START_TIMEOUT_S)
            data = parent_sock.recv(MAX_MESSAGE) if ready else b""
            message = json.loads(data) if data else {}
        except (OSError, ValueError):
            message = {}
        if message.get("op") != "ready":
            self._stop_zygote()
            detail = message.get("error") or "no answer from the executor process"
            raise ExecutorUnavailable("cannot start the action runner: " + scrub(str(detail), ()))
        self._actions = frozenset(message.get("actions", ()))
        self._light_actions = frozenset(message.get("light_actions", ())) & self._actions
        self._light_pid = message.get("light_pid") if self._light_actions else None
        if not self._light_actions:
            light_sock.close()  # no light zygote came up: all go to the main one
            self._light_sock = None

    def _socket_for(self, action: str) -> socket.socket | None:
        """Return the socket of the zygote that runs ``action``."""
        if action in self._light_actions:
            return self._light_sock
        return self._sock

    def _stop_zygote(self) -> None:
        sock, proc, home = self._sock, self._proc, self._home
        light_sock = self._light_sock
        self._sock = self._proc = self._home = self._light_sock = self._light_pid = None
        self._actions = self._light_actions = frozenset()
        if light_sock is not None:
            light_sock.close()
        if sock is not None:
            sock.close()  # EOF tells the zygote to kill its children, exit
        if proc is not None:
            try:
                proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if home is not None:
            # A zygote that died (OOM, SIGKILL) could not kill what its
            # children started; whatever still carries its HOME ends here.
            kill_family(home)
            shutil.rmtree(home, ignore_errors=True)

    def _next_request_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _after_fork_in_child(self) -> None:
        """Drop the parent's zygote without stopping it."""
        for sock in (self._sock, self._light_sock):
            if sock is not None:
                # Closing our copy only; the parent still holds its own end,
                # and the zygote must keep seeing the parent's end as open.
                sock.close()
        self._sock = self._proc = self._home = self._light_sock = self._light_pid = None
        self._actions = self._light_actions = frozenset()
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()


# -- one runner per OS process ------------------------------------------------

_live_runners: weakref.WeakSet[Runner] = weakref.WeakSet()
_shared: dict[
    tuple[tuple[str, ...], tuple[str, ...], int, Sandbox | None, str | None, float], Runner
] = {}
_shared_pid = os.getpid()
_shared_lock = threading.Lock()


def get_runner(
    modules: Sequence[str] = BUILTIN_MODULES,
    *,
    python_path: Sequence[str] = (),
    warm_spares: int = 1,
    sandbox: Sandbox | None = None,
    plugin_group: str | None = None,
    retire_spares_s: float = 0.0,
) -> Runner:
    """Return this process's runner for ``modules``, creating it once.

    A forked process (a django-q2 worker) gets its own runner and zygote:
    two processes sharing one socket would read each other's replies.
    """
    global _shared_pid
    key = (
        tuple(modules),
        tuple(os.fspath(p) for p in python_path),
        warm_spares,
        sandbox,
        plugin_group,
        retire_spares_s,
    )
    with _shared_lock:
        if _shared_pid != os.getpid():
            _shared.clear()
            _shared_pid = os.getpid()
        runner = _shared.get(key)
        if runner is None:
            runner = _shared[key] = Runner(
                key[0],
                python_path=key[1],
                warm_spares=warm_spares,
                sandbox=sandbox,
                plugin_group=plugin_group,
                retire_spares_s=retire_spares_s,
            )
        return runner


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()
    _shared.clear()
    for runner in list(_live_runners):
        runner._after_fork_in_child()


def close_runners() -> None:
    """Stop this process's zygotes: their actions, browsers and home folders.

    Runs at exit; a process that ends without running atexit handlers (a
    forked multiprocessing child, as django-q2's workers are) must call it
    itself, or each zygote's home folder stays behind in the temp folder.
    """
    for runner in list(_live_runners):
        if runner._owner_pid == os.getpid():
            with runner._lock:
                runner._stop_zygote()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(close_runners)
