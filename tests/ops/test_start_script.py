"""`scripts/start.sh` stops on SIGTERM to its process group and leaves nothing behind.

The whole script runs on an installation of its own (a temporary var/ and
port): set-up, migrations, the demo, then the web process and the worker.
A demo run starts an action, so the worker has its zygotes, spare browsers
and temporary home folders; SIGTERM to the script's whole process group
(what systemd or a terminal's Ctrl-C sends) must end every one of them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.executors._procs import descendants, is_gone, read_proc
from tests.support.fixtures import ROOT
from tests.support.servers import free_port, listening
from tests.support.waiting import wait_for

pytestmark = pytest.mark.worker


def own_environment(var: Path, port: int) -> dict[str, str]:
    """This machine's environment without the test session's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTOS_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(AGENTOS_VAR_DIR=str(var), AGENTOS_PORT=str(port), AGENTOS_BROWSER_SPARES="1")
    return env


def zygote_homes(pids: list[int]) -> list[str]:
    homes = []
    for pid in pids:
        try:
            if b"executors.zygote" in read_proc(pid, "cmdline"):
                environ = read_proc(pid, "environ").split(b"\0")
                homes += [v[5:].decode() for v in environ if v.startswith(b"HOME=")]
        except OSError:
            continue
    return homes


def test_start_sh_stops_on_a_group_sigterm_leaving_nothing_behind(tmp_path: Path) -> None:
    var = Path(tempfile.mkdtemp(prefix="agentos-start-sh-"))
    port = free_port()
    env = own_environment(var, port)
    log = open(tmp_path / "start.log", "ab")
    script = subprocess.Popen(
        ["bash", "scripts/start.sh"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = lambda: (tmp_path / "start.log").read_text(errors="replace")  # noqa: E731
    try:
        wait_for(lambda: listening(port), timeout=300, message="start.sh to serve")
        started = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "start_run",
                "--workflow",
                "invoice-filing",
                "--as",
                "operator",
                "--set",
                "inbox=demo/inbox",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        wait_for(
            lambda: zygote_homes(descendants(script.pid)),
            timeout=120,
            message="the worker to start its action runner",
        )
        wait_for(
            lambda: "run.paused" in _events(env), timeout=120, every=1, message="the run to pause"
        )
        pids = [script.pid, *descendants(script.pid)]
        homes = zygote_homes(pids)

        os.killpg(script.pid, signal.SIGTERM)
        code = script.wait(timeout=60)
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait(timeout=10)
        log.close()
        shutil.rmtree(var, ignore_errors=True)
    assert code in (0, 143), output()[-3000:]  # 143: bash ended by the signal after stop()
    wait_for(
        lambda: all(is_gone(pid) for pid in pids),
        timeout=15,
        message="every process start.sh started to end",
    )
    assert homes and [h for h in homes if os.path.exists(h)] == []
    assert "==> stopped" in output()


def _events(env: dict[str, str]) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from workflows.models import Event; "
            "print(list(Event.objects.values_list('type', flat=True)))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout
