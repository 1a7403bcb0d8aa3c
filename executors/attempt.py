"""Supervise one action child: feed its stdin, collect its result and log,
enforce its timeout and heartbeat, and turn what happened into a result.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agentos_common.nul import NUL_MESSAGE, first_nul
from agentos_common.redaction import scrub_secrets_in
from executors.scrubbing import scrub

if TYPE_CHECKING:
    from executors.runner import Runner

__all__ = ["ActionResult", "Attempt", "ExecutorUnavailable", "Status", "killpg"]

Status = Literal["succeeded", "failed", "crashed", "needs_input", "timed_out", "killed"]
REPORTED_STATUSES = frozenset({"succeeded", "failed", "crashed", "needs_input"})
LOG_CHARS = 4000
MAX_MESSAGE = 1 << 20
# What a child may send before it is stopped: its result JSON, and its log
# (stdout and stderr, of which only the tail is kept). Past either, the
# action's processes are killed and the step fails naming the limit, so an
# action printing forever cannot grow the worker or hold it until timeout.
MAX_RESULT_BYTES = 8 << 20
MAX_LOG_BYTES = 64 << 20
# How long to wait for the zygote to report a child we SIGKILLed; past it
# the zygote itself is presumed stuck and is replaced.
KILL_GRACE_S = 5.0


class ExecutorUnavailable(RuntimeError):
    """Raised when the zygote cannot be started or reached."""


@dataclass
class ActionResult:
    """Describe how one action run ended."""

    status: Status
    output: dict[str, Any] | None = None
    error: str | None = None
    needs_input: dict[str, Any] | None = None
    exit_code: int | None = None
    duration_ms: float = 0.0
    log: str = ""


class Attempt:
    """Supervise one child: feed stdin, collect result and log, enforce time."""

    def __init__(self, runner: Runner, action: str, payload: bytes, secrets: list[str]) -> None:
        self.runner = runner
        self.action = action
        # None once stdin has been closed, so it is closed exactly once.
        self.payload: memoryview | None = memoryview(payload)
        self.secrets = secrets
        self.request_id = runner._next_request_id()
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.kill_reason: Status | None = None
        self.killed = False
        self.zygote_lost = False
        self.rejected: str | None = None
        # The zygote's socket the request went to (the light one or the main).
        self.sock: socket.socket | None = None
        self.result = bytearray()
        self.log = bytearray()
        self.log_bytes = 0
        # Set (with a kill) when the child sent more than a limit allows.
        self.overflow: str | None = None

    def run(
        self,
        timeout_s: float,
        heartbeat: Callable[[], bool] | None,
        heartbeat_every_s: float,
    ) -> ActionResult:
        stdin_r, stdin_w = os.pipe()
        result_r, result_w = os.pipe()
        log_r, log_w = os.pipe()
        for fd in (stdin_w, result_r, log_r):
            os.set_blocking(fd, False)
        started = time.monotonic()
        # A request fits the pipe's buffer as a rule: written (and closed)
        # before the child exists, it is there the moment the child reads,
        # and the loop below has no stdin left to wait on.
        self._feed_stdin(stdin_w)
        try:
            self._send_request([stdin_r, result_w, log_w])
        finally:
            for fd in (stdin_r, result_w, log_w):
                os.close(fd)
        try:
            self._supervise(
                stdin_w,
                result_r,
                log_r,
                started,
                timeout_s,
                heartbeat,
                heartbeat_every_s,
            )
        finally:
            if self.exit_code is None and self.pid is not None:
                # Leaving early (zygote gone, heartbeat raised): never
                # leave the action running behind our back.
                killpg(self.pid)
            self._keep_result(_drain(result_r, MAX_RESULT_BYTES + 1))
            self._keep_log(_drain(log_r, MAX_LOG_BYTES + 1))
            if self.payload is not None:
                os.close(stdin_w)
            os.close(result_r)
            os.close(log_r)
            if self.zygote_lost:
                self.runner._stop_zygote()
        return self._outcome(timeout_s, (time.monotonic() - started) * 1000)

    def _send_request(self, fds: list[int]) -> None:
        message = json.dumps({"op": "run", "id": self.request_id, "action": self.action}).encode()
        for retry in (True, False):
            sock = self.runner._socket_for(self.action)
            assert sock is not None
            try:
                socket.send_fds(sock, [message], fds)
                self.sock = sock
                return
            except OSError as exc:
                # The zygote died since the liveness check; nothing has
                # started yet, so one restart and resend is safe.
                self.runner._stop_zygote()
                if not retry:
                    raise ExecutorUnavailable("the action runner is not reachable") from exc
                self.runner._ensure_zygote()

    def _supervise(
        self,
        stdin_w: int,
        result_r: int,
        log_r: int,
        started: float,
        timeout_s: float,
        heartbeat: Callable[[], bool] | None,
        heartbeat_every_s: float,
    ) -> None:
        sock = self.sock
        assert sock is not None
        readers = {sock.fileno(), result_r, log_r}
        deadline = started + timeout_s
        next_beat = started + heartbeat_every_s if heartbeat else float("inf")
        grace_until = float("inf")
        while self.exit_code is None and self.rejected is None:
            now = time.monotonic()
            if self.kill_reason is None and now >= deadline:
                self.kill_reason = "timed_out"
            if self.kill_reason is None and heartbeat and now >= next_beat:
                next_beat = now + heartbeat_every_s
                if not heartbeat():
                    self.kill_reason = "killed"
            if self.kill_reason is not None and not self.killed:
                grace_until = min(grace_until, now + KILL_GRACE_S)
                self._kill()
            if now >= grace_until:
                self.zygote_lost = True
                return
            wake = grace_until if self.kill_reason else min(deadline, next_beat)
            writers = [stdin_w] if self.payload is not None else []
            readable, writable, _ = select.select(list(readers), writers, [], max(0.0, wake - now))
            if writable:
                self._feed_stdin(stdin_w)
            for fd in readable:
                if fd == sock.fileno():
                    if not self._on_message(sock):
                        self.zygote_lost = True
                        return
                    continue
                chunk = _read_some(fd)
                if chunk is None:
                    continue  # woken without data; try again next round
                if chunk == b"":
                    readers.discard(fd)
                elif fd == result_r:
                    self._keep_result(chunk)
                else:
                    self._keep_log(chunk)
                if self.overflow is not None and self.kill_reason is None:
                    self.kill_reason = "failed"  # killed at the top of the loop

    def _feed_stdin(self, stdin_w: int) -> None:
        assert self.payload is not None
        try:
            written = os.write(stdin_w, self.payload[: 1 << 16])
            self.payload = self.payload[written:]
        except BlockingIOError:
            return
        except BrokenPipeError:
            self.payload = memoryview(b"")  # the child died before reading
        if not self.payload:
            os.close(stdin_w)  # EOF: the child reads stdin to the end
            self.payload = None

    def _on_message(self, sock: socket.socket) -> bool:
        try:
            data = sock.recv(MAX_MESSAGE)
        except OSError:
            return False
        if not data:
            return False
        message = json.loads(data)
        if message.get("id") != self.request_id:
            return True  # a late report about an earlier, abandoned child
        op = message.get("op")
        if op == "started":
            self.pid = int(message["pid"])
            if self.kill_reason is not None:
                self._kill()
        elif op == "exited":
            self.exit_code = int(message["exit_code"])
        elif op == "rejected":
            self.rejected = str(message.get("error"))
        return True

    def _kill(self) -> None:
        if self.pid is not None:
            killpg(self.pid)
            self.killed = True

    def _keep_result(self, chunk: bytes) -> None:
        if self.overflow is not None:
            return
        self.result += chunk
        if len(self.result) > MAX_RESULT_BYTES:
            self.result.clear()
            self.overflow = (
                f"the action's result is larger than the {MAX_RESULT_BYTES >> 20} MiB limit"
            )

    def _keep_log(self, chunk: bytes) -> None:
        self.log_bytes += len(chunk)
        if self.log_bytes > MAX_LOG_BYTES and self.overflow is None:
            self.overflow = (
                f"the action wrote more than the {MAX_LOG_BYTES >> 20} MiB "
                "limit to its log (stdout and stderr)"
            )
        self.log += chunk
        # Keep a margin over LOG_CHARS so multi-byte text and masking at
        # the cut still leave ~LOG_CHARS characters.
        if len(self.log) > 4 * LOG_CHARS:
            del self.log[: len(self.log) - 4 * LOG_CHARS]

    def _outcome(self, timeout_s: float, duration_ms: float) -> ActionResult:
        # A NUL cannot be stored (PostgreSQL): the log shows it as U+FFFD,
        # like any other byte that is not text.
        log = scrub(self.log.decode("utf-8", "replace").replace("\x00", "\ufffd"), self.secrets)[
            -LOG_CHARS:
        ]
        common: dict[str, Any] = {
            "exit_code": self.exit_code,
            "duration_ms": duration_ms,
            "log": log,
        }
        if self.overflow is not None:
            return ActionResult(
                status="failed", error=f"{self.overflow}; its processes were killed", **common
            )
        reported = _parse_result(self.result)
        nul = (
            None
            if reported is None
            else first_nul({key: reported.get(key) for key in ("output", "error", "needs_input")})
        )
        if nul is not None:
            # Stored as is, it would fail the database write; changed, it would
            # not be what the action said. The step fails and says where.
            return ActionResult(
                status="failed",
                error=f"the action's {nul} {NUL_MESSAGE}; it cannot be stored",
                **common,
            )
        if reported is not None:
            # A result written before a late kill still describes work
            # that finished, so it wins over the kill.
            needs_input = reported.get("needs_input")
            return ActionResult(
                status=reported["status"],
                output=scrub_secrets_in(reported.get("output"), self.secrets),
                error=_scrub_optional(reported.get("error"), self.secrets),
                needs_input=scrub_secrets_in(needs_input, self.secrets),
                **common,
            )
        if self.kill_reason == "timed_out":
            error = f"timed out after {timeout_s:g} s; the action's processes were killed"
            return ActionResult(status="timed_out", error=error, **common)
        if self.kill_reason == "killed":
            error = "stopped: the heartbeat asked for the action to be killed"
            return ActionResult(status="killed", error=error, **common)
        return ActionResult(status="crashed", error=self._crash_reason(), **common)

    def _crash_reason(self) -> str:
        if self.rejected is not None:
            return "the action runner refused the request: " + scrub(self.rejected, self.secrets)
        if self.zygote_lost:
            return "the action runner process died while the action ran"
        code = self.exit_code
        if code is not None and code < 0:
            return f"the action process was killed by {signal.Signals(-code).name}"
        return f"the action process exited with code {code} without a result"


def _parse_result(raw: bytes | bytearray) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        result = json.loads(raw)
    except ValueError:
        return None  # cut short: the child died while writing
    if not isinstance(result, dict) or result.get("status") not in REPORTED_STATUSES:
        return None
    return result


def _scrub_optional(text: Any, secrets: Iterable[str]) -> str | None:
    return None if text is None else scrub(str(text), secrets)


def killpg(pgid: int) -> None:
    """SIGKILL a process group, or the lone process if it leads none yet."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        # Not yet a group leader (killed between fork and setsid).
        try:
            os.kill(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    except PermissionError:
        pass


def _read_some(fd: int) -> bytes | None:
    """Return a chunk, b"" at EOF, or None when nothing is ready."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None


def _drain(fd: int, limit: int) -> bytes:
    """Return what is buffered in ``fd`` now, without waiting for EOF.

    The limit stops a process that escaped the group kill (it called
    setsid itself) and still writes from keeping us here forever.
    """
    chunks = []
    total = 0
    while total < limit and (chunk := _read_some(fd)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
