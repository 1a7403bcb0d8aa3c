"""Read the deployment recipes in deploy/ and run what they run, as their manager would.

Neither systemd (as PID 1) nor a Docker daemon is available where the suite
runs, so these helpers take each recipe's own command line (a unit's
``ExecStart``, a compose service's ``command``), map the install paths onto
this checkout, start it in a session of its own, and stop it the way the
recipe says its manager stops it: SIGTERM to the main process only
(systemd's ``KillMode=mixed``, tini under ``docker stop``) or to every
process (``KillMode=control-group``), then SIGKILL to whatever is left when
the recipe's stop timeout runs out. A recipe whose command or signals stop
working fails here, so it cannot rot unseen.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.executors._procs import descendants, is_gone, read_proc
from tests.support.fixtures import ROOT

DEPLOY = ROOT / "deploy"
INSTALL_DIR = "/opt/agentos"  # where the systemd units expect the checkout
IMAGE_DIR = "/opt/agentos"  # WORKDIR of deploy/docker/Dockerfile


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Parse a systemd unit file: section -> key -> values (keys may repeat)."""
    unit: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}: a key outside any section: {line}"
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def seconds(value: str) -> float:
    """Return a systemd or compose duration ("90", "90s", "1min 30s", "1m30s") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert parts, f"not a duration: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def read_compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())


def local_argv(argv: list[str], *, port: int | None = None) -> list[str]:
    """Map a recipe's command onto this checkout: its interpreter, a free port, loopback."""
    out = []
    for arg in argv:
        if arg in (f"{INSTALL_DIR}/.venv/bin/python", ".venv/bin/python"):
            arg = sys.executable
        if port is not None:
            arg = arg.replace("%i", str(port)).replace("8000", str(port))
        out.append(arg.replace("0.0.0.0", "127.0.0.1"))
    return out


def unit_argv(unit: dict[str, dict[str, list[str]]], *, port: int | None = None) -> list[str]:
    (exec_start,) = unit["Service"]["ExecStart"]
    return local_argv(shlex.split(exec_start), port=port)


@dataclass
class Stopped:
    """What a stop did: the exit status, how long it took, what needed SIGKILL."""

    code: int | None
    seconds: float
    killed: list[int] = field(default_factory=list)
    homes_left: list[str] = field(default_factory=list)


class Service:
    """A recipe's command running in a session of its own, with its log."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.log_path = log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tree(self) -> list[int]:
        return [self.proc.pid, *descendants(self.proc.pid)]

    def zygote_homes(self) -> list[str]:
        homes = []
        for pid in descendants(self.proc.pid):
            try:
                if b"executors.zygote" not in read_proc(pid, "cmdline"):
                    continue
                environ = read_proc(pid, "environ").split(b"\0")
            except OSError:
                continue
            homes += [v[5:].decode() for v in environ if v.startswith(b"HOME=")]
        return homes

    def stop(self, *, kill_mode: str, timeout_s: float) -> Stopped:
        """Stop as a manager would: SIGTERM (main or all), wait, SIGKILL the rest.

        ``kill_mode`` is systemd's: ``mixed`` (main process only; also what
        tini does under ``docker stop``) or ``control-group`` (every process).
        """
        pids = self.tree()
        homes = self.zygote_homes()
        started = time.monotonic()
        if kill_mode == "mixed":
            self.proc.send_signal(signal.SIGTERM)
        elif kill_mode == "control-group":
            for pid in pids:
                _signal(pid, signal.SIGTERM)
        else:
            raise ValueError(kill_mode)
        code: int | None
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - started
        # The manager's final sweep: SIGKILL to whatever of the service lives.
        # A clean stop leaves nothing for it (given a moment for the last exits).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(is_gone(p) for p in pids):
            time.sleep(0.05)
        killed = [pid for pid in pids if not is_gone(pid)]
        for pid in killed:
            _signal(pid, signal.SIGKILL)
        if code is None:
            code = self.proc.wait(timeout=10)
            code = None if killed else code
        self._log.close()
        return Stopped(code, took, killed, [h for h in homes if os.path.exists(h)])

    def kill(self) -> None:
        """Clean up after a failed test."""
        if self.proc.poll() is None:
            for pid in reversed(self.tree()):
                _signal(pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
