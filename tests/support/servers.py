"""Throwaway PostgreSQL and Redis servers on free ports, for the fault tests.

Restarting the machine's shared servers would break other suites running at
the same time, so the tests that restart a server start their own, restart
that one, and remove it afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.support.waiting import wait_for


def free_port() -> int:
    """Return a port nothing listens on now (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """Return the pids of a process's live children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


class RedisServer:
    """`redis-server` on a free port, keeping nothing on disk."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.log_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: listening(self.port), timeout=15, message="redis-server to listen")
        return self

    def kill(self) -> None:
        """Stop it hard: whatever was queued in it is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb) on a free port, trust auth."""

    def __init__(self) -> None:
        self.port = free_port()
        # Under /tmp, not pytest's tmp_path: the server runs as `postgres`
        # when the tests run as root, and pytest's folders are private.
        self.dir = Path(tempfile.mkdtemp(prefix="agentos-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/agentos"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _run(self, *command: str) -> None:
        subprocess.run(self._as_owner(*command), check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.dir} -c fsync=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def create_database(self, name: str = "agentos") -> None:
        self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            f"CREATE DATABASE {name}",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `fast` ends every session (a normal restart does too)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
