"""The runner runs each action in a sandboxed child of a zygote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from executors.base import ActionContext
from executors.registry import UnknownAction
from executors.runner import ActionResult, Runner, get_runner
from executors.scrubbing import PROJECT_DIR
from tests.support.waiting import wait_for

from ._procs import descendants, is_gone, read_proc
from .conftest import PYTHON_PATH, TEST_MODULES, MakeContext

SECRET = "s3cr3t-Value-7f1d"


def run_in_thread(
    runner: Runner, action: str, params: dict[str, Any], ctx: ActionContext, **kwargs: Any
) -> tuple[threading.Thread, list[ActionResult]]:
    """Start ``runner.run`` in a thread; the list receives its result."""
    results: list[ActionResult] = []
    thread = threading.Thread(
        target=lambda: results.append(runner.run(action, params, ctx, **kwargs)),
        daemon=True,
    )
    thread.start()
    return thread, results


def ledger_has(ledger: Path, text: str) -> bool:
    return ledger.exists() and text in ledger.read_text()


def test_noop_round_trip(runner: Runner, make_ctx: MakeContext) -> None:
    """A no-op action succeeds with an empty output and exit code 0."""
    result = runner.run("test.noop", {}, make_ctx(), timeout_s=30)
    assert result.status == "succeeded"
    assert result.output == {}
    assert result.exit_code == 0
    assert result.error is None
    assert result.duration_ms > 0


def test_unknown_action_is_refused_before_forking(runner: Runner, make_ctx: MakeContext) -> None:
    with pytest.raises(UnknownAction):
        runner.run("test.nope", {}, make_ctx(), timeout_s=30)


def test_invalid_params_fail_naming_the_field(runner: Runner, make_ctx: MakeContext) -> None:
    result = runner.run("test.sleep", {"seconds": "soon"}, make_ctx(), timeout_s=30)
    assert result.status == "failed"
    assert "seconds" in (result.error or "")


def test_secret_travels_on_stdin_not_argv_or_environ(
    make_ctx: MakeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's cmdline and environ hold no secret and no parent vars."""
    monkeypatch.setenv("AGENTOS_PARENT_ONLY", "parent-value")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "agentos_site.settings")
    runner = Runner(TEST_MODULES, python_path=PYTHON_PATH)
    ledger = tmp_path / "ledger.txt"
    stop = threading.Event()
    try:
        runner.start()
        ctx = make_ctx(secrets={"TEST_TOKEN": SECRET})
        thread, results = run_in_thread(
            runner,
            "test.sleep",
            {"seconds": 60, "ledger": str(ledger)},
            ctx,
            timeout_s=120,
            heartbeat=lambda: not stop.is_set(),
            heartbeat_every_s=0.05,
        )
        wait_for(lambda: ledger_has(ledger, "start"), timeout=10, message="the action to start")
        zygote = runner.zygote_pid
        assert zygote is not None
        children = descendants(zygote)
        assert children, "the action child should be running"
        for pid in [zygote, *children]:
            cmdline = read_proc(pid, "cmdline")
            environ = read_proc(pid, "environ")
            assert SECRET.encode() not in cmdline + environ
            names = {item.split(b"=", 1)[0] for item in environ.split(b"\0") if item}
            allowed = {b"PATH", b"LANG", b"LC_ALL", b"TZ", b"HOME", b"PYTHONPATH", b"TMPDIR"}
            if "COVERAGE_PROCESS_CONFIG" in os.environ:  # scripts/test.sh measuring
                allowed.add(b"COVERAGE_PROCESS_CONFIG")
            assert names <= allowed
            assert b"parent-value" not in environ
    finally:
        stop.set()
        thread.join(30)
        runner.close()
    assert results[0].status == "killed"


def test_secrets_are_masked_in_output_and_log(runner: Runner, make_ctx: MakeContext) -> None:
    ctx = make_ctx(secrets={"TEST_TOKEN": SECRET})
    result = runner.run("test.echo_secret", {"text": "hi"}, ctx, timeout_s=30)
    assert result.status == "succeeded"
    assert result.output is not None
    assert result.output["text"] == "hi:***"
    assert "token=*** text=hi" in result.log
    assert SECRET not in json.dumps(result.output) + result.log
    assert result.output["home"] != os.path.expanduser("~")


def test_an_output_with_a_nul_fails_the_step_naming_the_field(
    runner: Runner, make_ctx: MakeContext
) -> None:
    """No database stores a NUL in text alike: the step fails and says where,
    and the log shows the NUL as U+FFFD instead of breaking its write."""
    ctx = make_ctx(secrets={"TEST_TOKEN": SECRET})
    result = runner.run("test.echo_secret", {"text": "a\x00b"}, ctx, timeout_s=30)
    assert result.status == "failed"
    assert result.output is None
    assert result.error == (
        "the action's output.text must not contain a NUL (0x00) character; it cannot be stored"
    )
    assert "\x00" not in result.log and "text=a\ufffdb" in result.log


def test_missing_secret_fails_naming_it(runner: Runner, make_ctx: MakeContext) -> None:
    result = runner.run("test.echo_secret", {}, make_ctx(), timeout_s=30)
    assert result.status == "failed"
    assert "TEST_TOKEN" in (result.error or "")


def test_timeout_kills_the_whole_process_group(
    runner: Runner, make_ctx: MakeContext, tmp_path: Path
) -> None:
    """A hung action and the `sleep 1000` it started are both killed."""
    pid_file = tmp_path / "grandchild.pid"
    result = runner.run(
        "test.spawn_and_hang", {"pid_file": str(pid_file)}, make_ctx(), timeout_s=2
    )
    assert result.status == "timed_out"
    assert result.exit_code == -signal.SIGKILL
    assert pid_file.exists(), "the action should have started its grandchild"
    grandchild = int(pid_file.read_text())
    wait_for(lambda: is_gone(grandchild), timeout=10, message="the grandchild to end")


@pytest.mark.parametrize("hang", [True, False], ids=["timed-out", "finished"])
def test_processes_an_action_detached_into_their_own_session_end_with_it(
    runner: Runner, make_ctx: MakeContext, tmp_path: Path, hang: bool
) -> None:
    """What left the action's process group (setsid) is killed by the zygote."""
    pid_file = tmp_path / "detached.pid"
    result = runner.run(
        "test.spawn_and_hang",
        {"pid_file": str(pid_file), "detach": True, "hang": hang},
        make_ctx(),
        timeout_s=2,
    )
    assert result.status == ("timed_out" if hang else "succeeded")
    detached = int(pid_file.read_text())
    # The zygote kills and reaps orphans before it reports the exit.
    assert is_gone(detached)


def test_what_an_action_left_in_its_temp_folder_is_gone_when_its_run_returns(
    runner: Runner, make_ctx: MakeContext
) -> None:
    """The zygote removes a TMPDIR the action left files in before it reports
    the exit (only an empty one is parked after the report, off the path)."""
    first = runner.run("test.scratch", {}, make_ctx(), timeout_s=30)
    assert first.status == "succeeded", first.error
    assert first.output is not None
    scratch = Path(first.output["path"])
    home = scratch.parent.parent.parent
    assert scratch.parent.parent == home / "tmp", "the file is in the child's own TMPDIR"
    assert not scratch.parent.exists(), "the child's TMPDIR outlived its report"
    second = runner.run("test.scratch", {}, make_ctx(), timeout_s=30)
    assert second.status == "succeeded", second.error
    assert second.output is not None and Path(second.output["path"]) != scratch


def test_spares_prime_the_request_path_without_failing() -> None:
    """A spare decodes and encodes a made-up request before its own arrives
    (executors.child.prime). A failure there is swallowed in the spare, so
    it would only cost each action its page faults back: it must not fail."""
    from executors.child import prime

    prime()


def test_an_actions_stdout_and_stderr_are_line_buffered_streams_on_its_log(
    runner: Runner, make_ctx: MakeContext
) -> None:
    """A spare builds its log streams before its request (executors.child.prepare),
    on a pipe: they are the streams the log pipe would have had, and write to it."""
    for _ in range(3):  # the first spares, and those forked after a reap
        result = runner.run("test.streams", {}, make_ctx(), timeout_s=30)
        assert result.status == "succeeded", (result.error, result.log)
        assert result.output is not None
        for fileno, name in enumerate(("stdout", "stderr"), start=1):
            assert result.output["streams"][name] == {
                "fileno": fileno,
                "seekable": False,
                "line_buffering": True,
                "encoding": "utf-8",
                "errors": "backslashreplace",
            }
            assert f"a line to {name} \\udcff" in result.log


def test_heartbeat_returning_false_kills(runner: Runner, make_ctx: MakeContext) -> None:
    beats: list[int] = []

    def heartbeat() -> bool:
        beats.append(1)
        return len(beats) < 2

    result = runner.run(
        "test.sleep",
        {"seconds": 600},
        make_ctx(),
        timeout_s=600,
        heartbeat=heartbeat,
        heartbeat_every_s=0.05,
    )
    assert result.status == "killed"
    assert result.exit_code == -signal.SIGKILL
    assert len(beats) == 2


def test_crash_failure_and_needs_input_are_told_apart(
    runner: Runner, make_ctx: MakeContext
) -> None:
    ctx = make_ctx()
    crashed = runner.run("test.crash", {"message": "boom"}, ctx, timeout_s=30)
    failed = runner.run("test.fail", {"message": "no such user"}, ctx, timeout_s=30)
    asked = runner.run("test.ask", {"field": "model", "enum": ["a", "b"]}, ctx, timeout_s=30)

    assert crashed.status == "crashed"
    assert "RuntimeError: boom" in (crashed.error or "")
    assert "Traceback" in (crashed.error or "")
    assert PROJECT_DIR not in (crashed.error or "") + crashed.log
    assert "about to crash" in crashed.log

    assert failed.status == "failed"
    assert failed.error == "no such user"

    assert asked.status == "needs_input"
    assert asked.needs_input == {
        "message": "choose a value for model",
        "fields": {"model": {"type": "string", "enum": ["a", "b"]}},
        "required": ["model"],
        "state": {"asked": "model"},
    }


def test_resume_values_reach_the_action(runner: Runner, make_ctx: MakeContext) -> None:
    ctx = make_ctx(resume_values={"model": "b"}, resume_state={"asked": "model"})
    result = runner.run("test.ask", {"field": "model", "enum": ["a", "b"]}, ctx, timeout_s=30)
    assert result.status == "succeeded"
    assert result.output == {"value": "b"}


def test_exit_without_result_and_death_by_signal_are_crashes(
    runner: Runner, make_ctx: MakeContext
) -> None:
    exited = runner.run("test.exit", {"code": 3}, make_ctx(), timeout_s=30)
    assert (exited.status, exited.exit_code) == ("crashed", 3)
    assert "without a result" in (exited.error or "")

    signalled = runner.run("test.exit", {"signal": signal.SIGSEGV}, make_ctx(), timeout_s=30)
    assert (signalled.status, signalled.exit_code) == ("crashed", -signal.SIGSEGV)
    assert "SIGSEGV" in (signalled.error or "")


def test_memory_limit_applies(runner: Runner, make_ctx: MakeContext) -> None:
    """test.allocate is capped at 256 MB of address space."""
    result = runner.run("test.allocate", {"megabytes": 512}, make_ctx(), timeout_s=30)
    assert result.status == "crashed"
    assert "MemoryError" in (result.error or "")
    small = runner.run("test.allocate", {"megabytes": 16}, make_ctx(), timeout_s=30)
    assert small.status == "succeeded"


def test_large_params_and_output_stream_through_pipes(
    runner: Runner, make_ctx: MakeContext
) -> None:
    """Payloads beyond a pipe's 64 KiB buffer neither block nor get cut."""
    value = "x" * 300_000
    result = runner.run(
        "verify.value_equals", {"value": value, "expected": value}, make_ctx(), timeout_s=30
    )
    assert result.status == "succeeded"
    assert result.output == {"value": value}


def test_log_keeps_the_last_4000_characters(runner: Runner, make_ctx: MakeContext) -> None:
    text = "".join(f"line {n}\n" for n in range(20_000)) + "THE END"
    ctx = make_ctx(secrets={"TEST_TOKEN": SECRET})
    result = runner.run("test.echo_secret", {"text": text}, ctx, timeout_s=30)
    assert result.status == "succeeded"
    assert len(result.log) <= 4000
    assert result.log.rstrip().endswith("THE END")


def test_a_killed_zygote_is_restarted(runner: Runner, make_ctx: MakeContext) -> None:
    runner.start()
    old = runner.zygote_pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: is_gone(old), timeout=10, message="the old zygote to end")
    result = runner.run("test.noop", {}, make_ctx(), timeout_s=30)
    assert result.status == "succeeded"
    assert runner.zygote_pid not in (None, old)


def test_closing_lets_the_zygote_exit_on_its_own(make_ctx: MakeContext) -> None:
    """EOF alone ends the zygote, its spare and children; no kill needed.

    Repeated because the race it guards (a spare forked just before the
    close) only shows now and then.
    """
    for _ in range(8):
        runner = Runner(TEST_MODULES, python_path=PYTHON_PATH)
        runner.run("test.noop", {}, make_ctx(), timeout_s=30)  # forks a new spare
        proc = runner._proc
        assert proc is not None
        runner.close()
        assert proc.returncode == 0


@pytest.mark.parametrize("which", ["main", "light"])
def test_zygote_death_mid_run_crashes_the_step_and_kills_the_child(
    make_ctx: MakeContext, tmp_path: Path, which: str
) -> None:
    """The main zygote, or the light one that runs this action (its child)."""
    runner = Runner(TEST_MODULES, python_path=PYTHON_PATH)
    ledger = tmp_path / "ledger.txt"
    try:
        runner.start()
        zygote = runner.zygote_pid if which == "main" else runner.light_zygote_pid
        assert zygote is not None
        thread, results = run_in_thread(
            runner,
            "test.sleep",
            {"seconds": 600, "ledger": str(ledger)},
            make_ctx(),
            timeout_s=600,
        )
        wait_for(lambda: ledger_has(ledger, "start"), timeout=10, message="the action to start")
        children = descendants(zygote)
        assert children, "expected the action child and spares"
        os.kill(zygote, signal.SIGKILL)
        thread.join(30)
        assert results and results[0].status == "crashed"
        assert "runner process died" in (results[0].error or "")
        for pid in children:
            wait_for(partial(is_gone, pid), timeout=10, message=f"pid {pid} to end")
        assert runner.run("test.noop", {}, make_ctx(), timeout_s=30).status == "succeeded"
        assert runner.light_zygote_pid not in (None, zygote)
    finally:
        runner.close()


HEAVY = ["openpyxl", "httpx", "playwright"]


def test_plain_actions_of_light_modules_fork_from_a_zygote_without_the_heavy_ones(
    make_ctx: MakeContext,
) -> None:
    """The files, verify and test actions run in children of the light zygote,
    which never imported openpyxl, httpx or playwright; the excel, api and
    browser actions still go to the main zygote, which preloaded them, and so
    does a module that needs playwright although the browser module, imported
    before it, had loaded it already."""
    modules = (*TEST_MODULES, "executors.actions.browser", "tests.support.browser_actions")
    runner = Runner(modules, python_path=PYTHON_PATH)
    try:
        runner.start()
        zygote, light = runner.zygote_pid, runner.light_zygote_pid
        assert zygote is not None and light is not None
        assert read_proc(light, "stat").decode().rsplit(")", 1)[1].split()[1] == str(zygote)
        names = set(runner.actions())
        routed = runner._light_actions
        assert {"verify.value_equals", "files.list", "test.loaded"} <= routed
        heavy = {name for name in names if name.startswith(("excel.", "api.", "hr."))}
        assert heavy and "test.portal_visit" in names
        assert not routed & {*heavy, "test.portal_visit"}
        result = runner.run("test.loaded", {"modules": HEAVY}, make_ctx(), timeout_s=30)
        assert result.status == "succeeded", result.error
        assert result.output == {"loaded": [], "parent": light}
    finally:
        runner.close()
    wait_for(partial(is_gone, light), timeout=10, message="the light zygote to end")


@pytest.mark.parametrize("detach", [False, True], ids=["in-group", "own-session"])
def test_zygote_death_before_it_reports_the_child_leaves_nothing_running(
    make_ctx: MakeContext, tmp_path: Path, detach: bool
) -> None:
    """A zygote killed before telling the runner the child's pid takes the
    child and what the child started with it.

    The zygote here never reports "started", so the runner never learns
    the child's pid: the window in which only the kernel (the child's
    parent-death signal) and the zygote's HOME can still find them.
    """
    runner = Runner((*TEST_MODULES, "tests.support.hold_started"), python_path=PYTHON_PATH)
    pid_file = tmp_path / "grandchild.pid"
    try:
        runner.start()
        zygote = runner.zygote_pid
        assert zygote is not None
        thread, results = run_in_thread(
            runner,
            "test.spawn_and_hang",
            {"pid_file": str(pid_file), "detach": detach},
            make_ctx(),
            timeout_s=600,
        )
        wait_for(pid_file.exists, timeout=10, message="the pid file")
        grandchild = int(pid_file.read_text())
        family = [*descendants(zygote), grandchild]
        assert len(set(family)) >= 3, "expected the spare, the child and its grandchild"
        os.kill(zygote, signal.SIGKILL)
        thread.join(30)
        assert results and results[0].status == "crashed"
        assert "runner process died" in (results[0].error or "")
        for pid in family:
            wait_for(partial(is_gone, pid), timeout=10, message=f"pid {pid} to end")
    finally:
        runner.close()


PARENT_SCRIPT = """
import sys
from executors.base import ActionContext
from executors.runner import Runner

runner = Runner({modules!r}, python_path={path!r})
ctx = ActionContext(run_id=1, step_id=1, node_id="n", attempt=1,
                    idempotency_key="parent-death", evidence_dir=sys.argv[2])
runner.run("test.sleep", {{"seconds": 1000, "ledger": sys.argv[1]}}, ctx,
           timeout_s=2000)
"""


def test_parent_death_kills_the_zygote_and_the_action(tmp_path: Path) -> None:
    """A worker killed with SIGKILL leaves no action running."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT.format(modules=TEST_MODULES, path=PYTHON_PATH))
    ledger = tmp_path / "ledger.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(PYTHON_PATH)}
    parent = subprocess.Popen([sys.executable, str(script), str(ledger), str(tmp_path)], env=env)
    try:
        wait_for(lambda: ledger_has(ledger, "start parent-death"), timeout=30, message="the start")
        family = descendants(parent.pid)
        assert len(family) >= 2, "expected the zygote and the action child"
    finally:
        parent.kill()
        parent.wait()
    for pid in family:
        wait_for(partial(is_gone, pid), timeout=10, message=f"pid {pid} to end")
    assert "end parent-death" not in ledger.read_text()


def test_a_forked_process_gets_its_own_runner(make_ctx: MakeContext) -> None:
    parent_runner = get_runner(TEST_MODULES, python_path=PYTHON_PATH)
    assert get_runner(TEST_MODULES, python_path=PYTHON_PATH) is parent_runner
    assert parent_runner.run("test.noop", {}, make_ctx(), timeout_s=30).status == "succeeded"
    parent_zygote = parent_runner.zygote_pid
    ctx = make_ctx()

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            os.close(read_end)
            child_runner = get_runner(TEST_MODULES, python_path=PYTHON_PATH)
            report = {  # in order: the zygote exists once the run is done
                "status": child_runner.run("test.noop", {}, ctx, timeout_s=30).status,
                "same": child_runner is parent_runner,
                "zygote": child_runner.zygote_pid,
            }
            child_runner.close()
            os.write(write_end, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read() or "{}")
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert report["same"] is False
    assert report["status"] == "succeeded"
    assert report["zygote"] not in (None, parent_zygote)
    # The child neither used nor stopped the parent's zygote.
    assert parent_runner.zygote_pid == parent_zygote
    assert parent_runner.run("test.noop", {}, make_ctx(), timeout_s=30).status == "succeeded"
    parent_runner.close()
