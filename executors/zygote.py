"""The pre-forked helper that starts action processes in a few ms.

Run as ``python -m executors.zygote MODULE...`` with a scrubbed environment
and one end of a ``SOCK_SEQPACKET`` socketpair as stdin. It imports the
action modules once, then hands each request to a child that runs one
action (see ``executors.child``): a "spare" forked ahead of time, waiting
on its own socket, so the fork is off the request's path. Plain actions
have PLAIN_SPARES spares, topped up after each child is reaped and its
exit reported (while the parent records the step, not while it waits for
the action), or at once when a request finds none. A family with a warm-up (the
browser actions: ``Action.warm_up``, ``executors.spares``) keeps a pool of
``--warm-spares`` spares, each with its own Chromium started before any
request, refilled one at a time once the family has been idle a moment,
so the browsers' starts do not compete with the actions using them (a
request that leaves the pool empty forks one at once). It reaps every
child it forks and reports exit codes to the parent; when the parent goes
away (EOF on the socket) it kills every live child's process group and
exits, so a worker killed with SIGKILL leaves no action running. It is a
child subreaper: whatever an action started in a session of its own
(Playwright detaches Chromium with setsid) is adopted by the zygote when
the action dies, and killed there, so a timeout leaves nothing behind.
A root zygote's children (and spares, before their warm-up) drop to the
action user and take on their limits (``executors.sandbox``).

Protocol, one JSON object per datagram:

- zygote -> parent: ``{"op": "ready", "pid", "actions", "light_actions",
  "light_pid"}`` or
  ``{"op": "error", "error"}`` once at start;
  ``{"op": "started", "id", "pid"}``, ``{"op": "rejected", "id", "error"}``
  and ``{"op": "exited", "id", "pid", "exit_code"}`` per request.
- parent -> zygote: ``{"op": "run", "id", "action"}`` carrying three fds
  (SCM_RIGHTS): the child's stdin, result and log pipe ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import select
import selectors
import shutil
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

# Imported here, before any fork, so no child pays for the import.
from agentos_common.folders import is_empty
from executors.attempt import killpg
from executors.child import enter_sandbox, prepare, prime, serve_one
from executors.family import children_of
from executors.sandbox import Sandbox, runtime_paths, unreachable
from executors.spares import (
    SPARES_FILE,
    Pools,
    Spare,
    child_tmp,
    tmp_pool,
    use_own_tmp,
    warm_up_key,
    warm_up_spare,
)

__all__ = ["main"]

try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - no libc to load: no prctl either
    _LIBC = None

MAX_MESSAGE = 1 << 16
REQUEST_FDS = 3
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
ORPHAN_SWEEPS = 20
# Spares kept for plain actions. One would do for one request at a time;
# the second stays ready while the first runs, so a request never waits
# for a fork even when it arrives before the last child's replacement.
PLAIN_SPARES = 2
# ...and beside a light zygote, whose own two serve most plain actions: the
# main zygote's plain spares then serve only excel and api actions (and
# heavy plugins), and each idle one holds ~17 MB (PSS).
PLAIN_SPARES_BESIDE_LIGHT = 1
# The light zygote's start (importing the light modules) and its stop.
LIGHT_START_TIMEOUT_S = 30.0
LIGHT_GRACE_S = 2.0
# Top-level packages of this project: importing them does not make a module heavy.
PROJECT_PACKAGES = frozenset({"executors", "agentos_common"})


@dataclass
class _Child:
    request_id: int
    pid: int
    family: str = ""


class _Zygote:
    """Fork, watch and reap action children for one parent."""

    def __init__(
        self,
        sock: socket.socket,
        registry: Any,
        warm_spares: int = 1,
        sandbox: Sandbox | None = None,
        retire_spares_s: float = 0.0,
        *,
        publish: bool = True,
    ) -> None:
        self.sock = sock
        self.registry = registry
        # Who the children become and their limits (executors.sandbox).
        self.sandbox = sandbox or Sandbox(user="")
        # Set in a child once it has dropped to the action user.
        self.confined = False
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        # Keyed by pidfd: a pidfd turns readable when its process exits,
        # which lets one selector wait on the socket and children alike.
        self.children: dict[int, _Child] = {}
        # A warm-up family's pool is first filled after its first request,
        # so a zygote that never runs a browser action never starts a browser.
        self.pools = Pools(warm_spares, retire_spares_s)
        # The ready count last written for the runner (see _publish), in
        # the home folder the runner started us in.
        self.published: int | None = None
        self.spares_file = os.path.join(os.getcwd(), SPARES_FILE)
        # Emptied temp folders of reaped children, for the next spares: an
        # rmdir waits for the disk here (agentos_common.folders).
        self.tmp_pool = tmp_pool()
        self.warm_ups: dict[str, Callable[[], None]] = {}
        for action_cls in registry:
            if action_cls.warm_up is not None:
                self.warm_ups[warm_up_key(action_cls)] = action_cls.warm_up
        self.pid = os.getpid()
        # Only the main zygote writes the ready count (the light one holds
        # no warm-up spares); a light zygote is its child, not an orphan.
        self.publish = publish
        self.helpers: set[int] = set()
        self.plain_spares = PLAIN_SPARES
        # An action the zygote runs, for _rehearse to look up (None: none).
        self.any_action: str | None = next(iter(registry.names()), None)

    def serve(self) -> None:
        """Handle requests, exits and ready spares until the parent disconnects."""
        while True:
            refill, retire = self.pools.refill_wait(self._busy), self.pools.retire_wait(self._busy)
            waits = [wait for wait in (refill, retire) if wait is not None]
            for key, _ in self.selector.select(min(waits) if waits else None):
                if key.fileobj is self.sock:
                    if not self._handle_request():
                        return
                elif isinstance(key.data, Spare):
                    self._on_spare(key.data)
                else:
                    self._reap(key.fd)
            for spare in self.pools.retire(self._busy):
                if not spare.ready:
                    self.selector.unregister(spare.control)
                self._drop(spare)
            for family in self.pools.due(self._busy):
                self.fork_spare(family)
            self._publish()

    def _publish(self) -> None:
        """Write how many browsers are ready in spares, for the runner to read.

        A file in the zygote's home (its working directory), replaced whole
        and only when the count changed: the worker's heartbeat reports it.
        """
        count = self.pools.ready_count()
        if not self.publish or count == self.published:
            return
        with contextlib.suppress(OSError):
            with open(self.spares_file + ".new", "w") as out:
                out.write(str(count))
            os.replace(self.spares_file + ".new", self.spares_file)
            self.published = count

    def _handle_request(self) -> bool:
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, REQUEST_FDS)
        except (ConnectionResetError, OSError):
            return False
        if not data:
            return False
        message: Any = None
        try:
            message = json.loads(data)
            if message.get("op") != "run" or len(fds) != REQUEST_FDS:
                raise ValueError(f"malformed request {message!r}")
            self._start(int(message["id"]), str(message["action"]), fds)
        except Exception as exc:  # report and keep serving
            request_id = message.get("id") if isinstance(message, dict) else None
            return self._send({"op": "rejected", "id": request_id, "error": str(exc)})
        finally:
            # The child has its copies now (or never will): close ours, or
            # the parent would never see EOF on the child's pipes.
            for fd in fds:
                os.close(fd)
        return True

    def _start(self, request_id: int, action_name: str, fds: list[int]) -> None:
        action_cls = self.registry.get(action_name)
        memory_limit_mb = action_cls.memory_limit_mb
        family = warm_up_key(action_cls)
        spare = self.pools.take(family)
        if spare is not None and not spare.ready:
            self.selector.unregister(spare.control)
        child: tuple[int, int] | None = None
        if spare is not None:
            try:
                message = json.dumps({"action": action_name}).encode()
                socket.send_fds(spare.control, [message], fds)
                child = (spare.pid, spare.pidfd)
                spare.control.close()
            except OSError:
                self._drop(spare)  # it died idle; fork the slow way instead
        if child is None:
            pid = os.fork()
            if pid == 0:
                _die_with(self.pid)
                self._become_child(action_name, memory_limit_mb, fds)
            child = (pid, os.pidfd_open(pid))
        pid, pidfd = child
        self.children[pidfd] = _Child(request_id, pid, family)
        self.selector.register(pidfd, selectors.EVENT_READ)
        self._send({"op": "started", "id": request_id, "pid": pid})
        if not family:
            # Forking copies the zygote's page tables (~1-2 ms) and takes a
            # core: done here only when no spare is left, else after the
            # reap (_top_up_plain), off the action's path.
            if not self.pools.count(family):
                self.fork_spare(family)
        elif self.pools.used(family):
            # The pool is drained (or was never filled): warm the next one
            # now, beside this action, rather than start it cold.
            self.fork_spare(family)

    def _on_spare(self, spare: Spare) -> None:
        """A warming spare said it is ready, or died (EOF)."""
        self.selector.unregister(spare.control)
        try:
            data = spare.control.recv(MAX_MESSAGE)
        except OSError:
            data = b""
        if data:
            self.pools.got_ready(spare)
            return
        self.pools.remove(spare)
        self._drop(spare)

    def _drop(self, spare: Spare) -> None:
        """Discard a spare and what it left: the browser it started, its temp folder."""
        spare.discard()
        self._kill_orphans()
        self.tmp_pool.give(child_tmp(spare.pid))

    def _busy(self, family: str) -> bool:
        return any(child.family == family for child in self.children.values())

    def fork_spare(self, family: str = "") -> None:
        """Fork the child that will take the next request of ``family``.

        Forking a process that has pydantic loaded costs ~0.5 ms; doing it
        ahead of time takes that (and setsid) off the request's path, and
        for a family with a warm-up (a browser's ~0.5 s start) that too.
        """
        control, spare_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        reserved = self.tmp_pool.reserve()
        pid = os.fork()
        if pid == 0:
            _die_with(self.pid)
            control.close()
            self._wait_as_spare(spare_end, family, reserved)
        spare_end.close()
        spare = Spare(pid, os.pidfd_open(pid), control, family, ready=not family)
        self.pools.add(spare)
        if not spare.ready:
            self.selector.register(control, selectors.EVENT_READ, spare)
        with contextlib.suppress(Exception):
            self._rehearse()  # an optimisation only, like a spare's prime()

    def _rehearse(self) -> None:
        """Go through a request's and a reap's steps on made-up data, sending nothing.

        A fork leaves the zygote's memory shared with the new spare until
        one of them writes to it, and Python writes wherever it reads
        (reference counts, caches): the next request and the reap after it
        each copied ~65 pages (~3 us a page) on the action's path, between
        the parent's request and the spare's, and between the child's exit
        and its report. Done here, right after the fork, those copies are
        made while the parent records the step (as ``child.prime`` does in
        a spare). Skipped when a request or an exit is already waiting: then
        it would only delay it. Nothing of the zygote's state changes: the
        lookups only read, the messages are encoded and decoded but not
        sent, and the poll of the selector takes nothing from it
        (level-triggered).
        """
        if self.selector.select(0):
            return
        message = json.loads(json.dumps({"op": "run", "id": 0, "action": self.any_action}))
        if message["action"] is not None:
            warm_up_key(self.registry.get(message["action"]))
        self.pools.count("")
        self._known_pids()
        children_of(os.getpid())
        is_empty(os.path.dirname(child_tmp(self.pid)))
        json.dumps(
            {"op": "exited", "id": 0, "pid": 0, "exit_code": os.waitstatus_to_exitcode(0)}
        ).encode()

    def _wait_as_spare(
        self, control: socket.socket, family: str, reserved: str | None
    ) -> NoReturn:
        keep_fds: set[int] = set()
        try:
            keep = control.fileno()
            # Hold nothing of the zygote's but this socket: an inherited
            # copy of the parent's socket would hide the zygote's death
            # from the parent.
            os.closerange(3, keep)
            os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
            os.setsid()
            use_own_tmp(reserved)
            # Before the warm-up: the browser a spare starts runs as the
            # action user, within the browser's limits, like the action.
            self._confine(browser=bool(family))
            if family:
                keep_fds = warm_up_spare(self.warm_ups[family])
                # Taken while warming, the zygote has sent the request and
                # closed its end: the request still waits to be read.
                with contextlib.suppress(OSError):
                    control.send(b"ready")
            # After the warm-up: the browser it started keeps the zygote's
            # stdout, stderr and signals, as before.
            prepare()
            with contextlib.suppress(Exception):
                prime()  # an optimisation only: a failure changes nothing
            data, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, REQUEST_FDS)
            if not data or len(fds) != REQUEST_FDS:
                os._exit(0)  # the zygote went away, or shut us down
            action_name = json.loads(data)["action"]
            memory_limit_mb = self.registry.get(action_name).memory_limit_mb
            control.close()
        except BaseException:  # must never return to the loop
            os._exit(70)
        self._become_child(action_name, memory_limit_mb, fds, keep_fds)

    def _become_child(
        self,
        action_name: str,
        memory_limit_mb: int | None,
        fds: list[int],
        keep_fds: set[int] | None = None,
    ) -> NoReturn:
        code = 70  # EX_SOFTWARE: the child died before reporting a result
        try:
            if keep_fds is None:
                # Forked for this request; a spare (keep_fds, even empty)
                # made its temp folder its TMPDIR before the request.
                use_own_tmp()
            stdin_fd, result_fd, log_fd = fds
            enter_sandbox(
                stdin_fd=stdin_fd,
                result_fd=result_fd,
                log_fd=log_fd,
                memory_limit_mb=memory_limit_mb,
                keep_fds=keep_fds or (),
            )
            self._confine(browser=memory_limit_mb is None)
            serve_one(self.registry, action_name)
            code = 0
        except BaseException:  # must never return to the loop
            # The log pipe may be gone; nothing is left to tell then.
            with contextlib.suppress(BaseException):
                traceback.print_exc()
                sys.stderr.flush()
        finally:
            os._exit(code)

    def _confine(self, *, browser: bool) -> None:
        """In a child: set the limits and drop to the action user.

        A spare does it before its request (and warm-up); the request then
        only adds the browser's memory cap when the action has one.
        """
        if browser:
            self.sandbox.limit_browser_memory()
        if self.confined:
            return
        self.sandbox.apply_limits()
        self.sandbox.drop(os.environ["TMPDIR"])
        if self.sandbox.drops:
            # A change of user clears PR_SET_PDEATHSIG: ask for it again.
            _die_with(self.pid)
        self.confined = True

    def check_sandbox(self) -> str | None:
        """Return why the action user cannot run actions here, or None.

        A child that dropped to the user tries to reach the code it imports:
        a Python under /root, say, would otherwise fail every action with an
        ImportError instead of failing here, once, saying what to do.
        """
        if not self.sandbox.drops:
            return None
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_end)
                self.sandbox.drop(None)
                problems = unreachable(runtime_paths())
                os.write(write_end, "; ".join(problems).encode()[:4000])
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            reported = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        if status != 0 and not reported:
            reported = "the check could not change to the action user"
        if not reported:
            return None
        return (
            f"the action user {self.sandbox.user!r} {reported}: run scripts/setup.sh "
            "as root, or give it access (docs/security.md)"
        )

    def _reap(self, pidfd: int) -> None:
        child = self.children.pop(pidfd)
        self.selector.unregister(pidfd)
        if child.family and not self._busy(child.family):
            self.pools.went_idle(child.family)
        # Kill leftovers in the child's group before reaping: until the
        # child is reaped its pid (and so the group id) cannot be reused.
        killpg(child.pid)
        _, status = os.waitpid(child.pid, 0)
        os.close(pidfd)
        self._kill_orphans()
        # Every process of the action is dead now. What it left in its temp
        # folder (a browser profile) is removed before the exit is reported,
        # so nothing of the action is left once its step is recorded; an
        # empty folder is parked for a later spare only after the report
        # (a scandir and a rename, which wait for the disk and a core: 2-4
        # ms under load that the parent used to wait for).
        tmp = child_tmp(child.pid)
        emptied = is_empty(tmp)
        if not emptied:
            self.tmp_pool.give(tmp)
        self._send(
            {
                "op": "exited",
                "id": child.request_id,
                "pid": child.pid,
                "exit_code": os.waitstatus_to_exitcode(status),
            }
        )
        if emptied:
            self.tmp_pool.give(tmp)
        if not child.family:
            self._top_up_plain()

    def _top_up_plain(self) -> None:
        """Fork plain spares up to ``plain_spares``, now that the parent has its answer."""
        while self.pools.count("") < self.plain_spares:
            self.fork_spare("")

    def _send(self, message: dict[str, Any]) -> bool:
        try:
            self.sock.send(json.dumps(message).encode())
        except OSError:
            return False
        return True

    def _kill_orphans(self) -> None:
        """Kill and reap what finished children left behind.

        Processes that left an action's process group (a browser started
        with setsid, its crash handler) are re-parented to the zygote, the
        subreaper, once the action exits. One action runs at a time per
        zygote, so every adopted process belongs to the one that ended.
        """
        for _ in range(ORPHAN_SWEEPS):
            known = self._known_pids()
            orphans = [pid for pid in children_of(os.getpid()) if pid not in known]
            if not orphans:
                return
            for pid in orphans:
                killpg(pid)  # its group too: a browser leads its helpers
            for pid in orphans:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    def _known_pids(self) -> set[int]:
        """Return the pids of the children the zygote forked and still knows."""
        known = {child.pid for child in self.children.values()} | self.helpers
        known.update(spare.pid for spare in self.pools.all())
        return known

    def shutdown(self) -> None:
        """Kill and reap every live child's process group."""
        for pidfd, child in list(self.children.items()):
            killpg(child.pid)
            try:
                os.waitpid(child.pid, 0)
            except ChildProcessError:
                pass
            os.close(pidfd)
            shutil.rmtree(child_tmp(child.pid), ignore_errors=True)
        self.children.clear()
        for spare in self.pools.all():
            spare.discard()
        self.pools.clear()
        for pid in self.helpers:
            # The light zygote saw the parent's EOF too and ends its own
            # children; past a grace it is killed (its children die with it).
            _wait_or_kill(pid, LIGHT_GRACE_S)
        self.helpers.clear()
        self._kill_orphans()


class _ImportGuard:
    """Refuse, while installed, to import any package but the allowed ones.

    The light zygote imports each action module under one: a module that
    asks for a package beyond the standard library, this project's, its own
    and what the zygote had before any action module (pydantic) is heavy.
    Its import fails there, before the package is loaded, and its actions
    run in the main zygote. A module that merely tried (``try: import x``)
    counts as heavy too, so no action behaves differently in either zygote.
    """

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.refused: list[str] = []

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.partition(".")[0] not in self.allowed:
            self.refused.append(fullname)
            raise ImportError(f"{fullname} is not loaded in the light zygote")
        return None  # let the usual finders find it


def _import_light(modules: list[str]) -> list[str]:
    """Import what is light of ``modules`` (see _ImportGuard); return those."""
    before = {name.partition(".")[0] for name in sys.modules}
    allowed = before | set(sys.stdlib_module_names) | PROJECT_PACKAGES
    light = []
    for name in modules:
        guard = _ImportGuard(allowed | {name.partition(".")[0]})
        sys.meta_path.insert(0, guard)
        try:
            importlib.import_module(name)
        except Exception:  # refused, or failing here as it would in the main zygote
            guard.refused.append(name)
        finally:
            sys.meta_path.remove(guard)
        if not guard.refused:
            light.append(name)
    return light


def _fork_light(
    light_sock: socket.socket, parent_sock: socket.socket, sandbox: Sandbox
) -> tuple[int, socket.socket]:
    """Fork the light zygote, before the main one imports any action module.

    Each fork copies the forking process's page tables, and each child
    copies (copy-on-write) the pages it writes and unmaps them all when it
    exits: all of it grows with the zygote's memory, of which openpyxl,
    httpx and playwright are more than half. The light zygote holds only
    the light modules (``_import_light``) and runs those of their actions
    that have no warm-up, on a socket of its own to the runner; the rest
    run in the main zygote, their heavy modules preloaded as before. It is
    the main zygote's child, dies with it (``PR_SET_PDEATHSIG``), and is a
    subreaper like it.

    Returns its pid and the socket on which the main zygote tells it its
    modules (``_start_light``).
    """
    control, light_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    main_zygote = os.getpid()
    pid = os.fork()
    if pid != 0:
        light_end.close()
        light_sock.close()
        return pid, control
    code = 70
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != main_zygote:
            os._exit(0)
        # Hold nothing of the main zygote's link to the runner: a copy
        # would hide the main zygote's death from the runner.
        parent_sock.close()
        control.close()
        _become_subreaper()
        data = light_end.recv(MAX_MESSAGE)
        modules = _import_light(json.loads(data)) if data else []
        if modules:
            _serve_light(light_sock, light_end, modules, sandbox)
        else:
            light_end.send(b"[]")  # nothing is light: all run in the main zygote
        code = 0
    finally:
        os._exit(code)


def _serve_light(
    sock: socket.socket, control: socket.socket, modules: list[str], sandbox: Sandbox
) -> None:
    from executors.registry import build_registry

    registry = build_registry(tuple(modules))
    gc.collect()
    gc.freeze()
    zygote = _Zygote(sock, registry, 0, sandbox, publish=False)
    control.send(json.dumps(modules).encode())
    control.close()
    try:
        zygote._top_up_plain()
        zygote.serve()
    finally:
        zygote.shutdown()


def _start_light(
    light: tuple[int, socket.socket], modules: list[str], build_registry: Callable[..., Any]
) -> list[str]:
    """Send the light zygote the action modules; return the actions it runs.

    It answers with the modules it found light; their actions without a
    warm-up are its. None (all run in the main zygote) when it did not
    come up.
    """
    _, control = light
    with control:
        try:
            control.send(json.dumps(modules).encode())
            control.settimeout(LIGHT_START_TIMEOUT_S)
            light_modules = json.loads(control.recv(MAX_MESSAGE) or b"[]")
        except (OSError, ValueError):
            return []
    return [
        action_cls.name
        for action_cls in build_registry(tuple(light_modules))
        if action_cls.warm_up is None
    ]


def _wait_or_kill(pid: int, grace_s: float) -> None:
    """Reap ``pid`` once it exits, or SIGKILL it after ``grace_s``."""
    with contextlib.suppress(OSError):
        pidfd = os.pidfd_open(pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], grace_s)
            if not ready:
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(pidfd)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        _LIBC.prctl(option, value, 0, 0, 0)


def _become_subreaper() -> None:
    """Adopt the orphans of our children instead of leaving them to init."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _die_with(zygote: int) -> None:
    """Have the kernel SIGKILL this fresh child when the zygote dies.

    Called first thing after fork, so there is no moment in which the
    child runs without it: a zygote killed before it could tell the
    runner the child's pid must not leave the child running unseen. The
    zygote may have died before the prctl; then the parent is already
    someone else, and the child gives up by itself. What the child starts
    later is found through the zygote's HOME (``executors.family``).
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The zygote ignores SIGTERM (main); an action and its browser do not.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if os.getppid() != zygote:
        os._exit(0)


def main(argv: list[str]) -> int:
    """Build the registry from ``argv`` modules and serve the parent.

    ``--warm-spares=N`` sizes the pool of each warm-up family;
    ``--retire-spares-s=S`` retires a family's spares after S seconds
    without a request (0: never);
    ``--sandbox=JSON`` (``executors.sandbox.Sandbox``) says whom the
    children run as and their limits; ``--plugins=GROUP`` preloads the
    actions of the installed packages' entry points in GROUP, so a fork
    costs the same for them as for built-ins; ``--light-fd=N`` is the
    socket of the light zygote (``_fork_light``). All come before the modules.
    """
    warm_spares = 1
    light_fd: int | None = None
    retire_spares_s = 0.0
    plugin_group: str | None = None
    sandbox = Sandbox(user="")
    while argv and argv[0].startswith("--"):
        option, _, value = argv[0].partition("=")
        if option == "--warm-spares":
            warm_spares = int(value)
        elif option == "--retire-spares-s":
            retire_spares_s = float(value)
        elif option == "--sandbox":
            sandbox = Sandbox.from_arg(value)
        elif option == "--plugins":
            plugin_group = value or None
        elif option == "--light-fd":
            light_fd = int(value)
        argv = argv[1:]
    # Ctrl-C in a terminal reaches the whole foreground group; the parent
    # decides when the zygote ends (by closing the socket), not the tty.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Likewise SIGTERM, which a service manager may send to every process
    # of the service (systemd's KillMode=control-group): the runner then
    # closes the socket in order, and shutdown() kills what actions started
    # and the runner removes the home folder. Children get the default back.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _become_subreaper()
    sock = socket.socket(fileno=os.dup(0))
    # Nothing in the zygote should read the socket as stdin by accident.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # Forked before any action module is imported: see _fork_light.
    light = None
    if light_fd is not None:
        light = _fork_light(socket.socket(fileno=light_fd), sock, sandbox)
    try:
        from executors.registry import build_registry

        registry = build_registry(tuple(argv), plugin_group=plugin_group)
    except BaseException:  # report any import failure
        error = traceback.format_exc()[-8000:]
        try:
            sock.send(json.dumps({"op": "error", "error": error}).encode())
        except OSError:
            pass
        return 1
    # Objects that exist now live as long as the zygote; freezing them keeps
    # the children's GC from touching (and so copying) their pages.
    gc.collect()
    gc.freeze()
    zygote = _Zygote(sock, registry, warm_spares, sandbox, retire_spares_s)
    problem = zygote.check_sandbox()
    if problem is not None:
        zygote._send({"op": "error", "error": problem})
        return 1
    light_actions: list[str] = []
    if light is not None:
        zygote.helpers.add(light[0])
        light_actions = _start_light(light, argv, build_registry)
        if light_actions:
            zygote.plain_spares = PLAIN_SPARES_BESIDE_LIGHT
    zygote._send(
        {
            "op": "ready",
            "pid": os.getpid(),
            "actions": registry.names(),
            "light_actions": light_actions,
            "light_pid": light[0] if light_actions and light is not None else None,
        }
    )
    try:
        zygote._top_up_plain()
        zygote.serve()
    finally:
        zygote.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
