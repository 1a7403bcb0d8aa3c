"""What a forked action process does between fork and exit.

The zygote forks, calls :func:`enter_sandbox` and :func:`serve_one` in the
child, and the child never returns to the zygote's loop. The request
(params, context and secrets) arrives on fd 0; the result leaves as one
JSON document on :data:`RESULT_FD`; fds 1 and 2 are the log.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import traceback
from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, ValidationError

from executors.base import ActionContext, ActionFailed, NeedsInput
from executors.registry import Registry
from executors.scrubbing import scrub

__all__ = ["RESULT_FD", "enter_sandbox", "execute", "prepare", "prime", "serve_one"]

RESULT_FD = 3
MAX_ERROR_CHARS = 8000

# Set once this process has its signals, core limit and log streams (see
# ``prepare``): a spare does it before its request, a child forked for a
# request in ``enter_sandbox``.
_prepared = False


def prepare() -> None:
    """Do what entering the sandbox needs to know nothing of the request for.

    Called in a spare once its warm-up is done, so that the request only
    has its fds to put in place and its memory limit to set: building the
    two log streams and resetting the signals took over a quarter of a
    no-op action's time between the request and its result (~150 us).
    The streams are built on a pipe, as the log is one, and write to fds 1
    and 2, to which ``enter_sandbox`` then moves the request's log pipe;
    until then nothing writes to them (what does is lost: the pipe has no
    reader).
    """
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(read_end)
    os.close(write_end)
    _prepare_streams_and_signals()


def _prepare_streams_and_signals() -> None:
    global _prepared
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The zygote ignores SIGINT (a Ctrl-C belongs to its parent); the
    # action should die of signals the ordinary way.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Line-buffered streams on fds 1 and 2 (the log pipe); they live until
    # os._exit. closefd=False: the fds, not the streams, are what the
    # request's log pipe replaces.
    sys.stdout = open(
        1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )
    sys.stderr = open(
        2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )
    _prepared = True


def enter_sandbox(
    *,
    stdin_fd: int,
    result_fd: int,
    log_fd: int,
    memory_limit_mb: int | None,
    keep_fds: Collection[int] = (),
) -> None:
    """Give the child its own session, its fds and its resource limits.

    ``keep_fds`` are what the child's own warm-up opened (the pipes to a
    browser it started ahead of time); every other inherited fd is closed.
    The signals, core limit and log streams are set up here unless the
    child did it as a spare (``prepare``).
    """
    # A session of its own makes the child a process-group leader, so one
    # killpg() on timeout also takes down Chromium or anything it started.
    # A spare forked ahead of time has already done it.
    if os.getsid(0) != os.getpid():
        os.setsid()
    os.dup2(stdin_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.dup2(result_fd, RESULT_FD, inheritable=False)
    # Drop the zygote's socket, pidfds and other children's pipes: holding
    # them would keep the parent's EOF detection and log pipes open.
    low = RESULT_FD + 1
    for fd in sorted(fd for fd in keep_fds if fd >= low):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))
    if memory_limit_mb is not None:
        limit = memory_limit_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if not _prepared:
        _prepare_streams_and_signals()


def prime() -> None:
    """Run a request's decoding and a result's encoding once, on made-up data.

    Called in a spare before its request arrives. A spare shares its memory
    with the zygote until it writes to it, and Python writes wherever it
    reads (reference counts, caches): the first JSON decoding, context
    validation and result encoding each copy the pages they touch. Done
    here, those copies (about a third of a no-op action's page faults) are
    made while the spare waits instead of on the action's path. No action
    code runs, and nothing of the made-up request is kept.
    """
    raw = json.dumps(
        {
            "params": {"value": "x", "expected": "x"},
            "ctx": {
                "run_id": 1,
                "step_id": 1,
                "node_id": "prime",
                "attempt": 1,
                "idempotency_key": "prime",
                "evidence_dir": "/nonexistent",
                "secrets": {"name": "value"},
            },
        }
    ).encode()
    request = json.loads(raw)
    ctx = ActionContext.model_validate(request["ctx"])
    ctx.policy()
    json.dumps(request["params"])
    json.dumps({"status": "succeeded", "output": {"ok": True}}).encode()


def serve_one(registry: Registry, action_name: str) -> None:
    """Read the request from stdin, run it and write the result."""
    raw = _read_all(0)
    result = execute(registry, action_name, raw)
    try:
        encoded = json.dumps(result).encode()
    except (TypeError, ValueError) as exc:
        encoded = json.dumps(
            {"status": "crashed", "error": f"result is not JSON-able: {exc}"}
        ).encode()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _write_all(RESULT_FD, encoded)


def execute(registry: Registry, action_name: str, raw: bytes) -> dict[str, Any]:
    """Run one action for a JSON request and return a JSON-able result."""
    secrets: list[str] = []
    try:
        request = json.loads(raw)
        ctx = ActionContext.model_validate(request["ctx"])
        secrets = list(ctx.secrets.values())
        action_cls = registry.get(action_name)
        try:
            # Strict: "yes" is not a bool nor "5" an int, in a plan or here.
            params = action_cls.Params.model_validate_json(
                json.dumps(request["params"]), strict=True
            )
        except ValidationError as exc:
            return _failed(f"invalid params: {describe_errors(exc)}")
        # The red line at run time: values rendered from the context were
        # not visible to the plan validator, so check them again here.
        violations = action_cls.policy_errors(params.model_dump(mode="json"), ctx.policy())
        if violations:
            detail = "; ".join(f"{field}: {msg}" for field, msg in violations)
            return _failed(f"refused by policy: {detail}")
        output = action_cls().run(params, ctx)
        return {"status": "succeeded", "output": _dump_output(action_cls.Output, output)}
    except ActionFailed as exc:
        return _failed(scrub(str(exc), secrets))
    except NeedsInput as exc:
        return {"status": "needs_input", "needs_input": exc.to_dict()}
    except BaseException as exc:  # anything else is a crash
        # format_exception never renders local variables, only code lines.
        text = "".join(traceback.format_exception(exc))
        return {
            "status": "crashed",
            "error": scrub(text, secrets)[-MAX_ERROR_CHARS:],
        }


def describe_errors(exc: ValidationError) -> str:
    """Name each invalid field and why, without echoing the input value."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _dump_output(model: type[BaseModel], output: object) -> dict[str, Any]:
    """Validate what ``run`` returned against the action's Output model."""
    if isinstance(output, model):
        return output.model_dump(mode="json")
    if isinstance(output, BaseModel):
        output = output.model_dump()
    # A ValidationError here is an action bug, so it surfaces as a crash.
    return model.model_validate(output).model_dump(mode="json")


def _failed(message: str) -> dict[str, Any]:
    return {"status": "failed", "error": message}


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
