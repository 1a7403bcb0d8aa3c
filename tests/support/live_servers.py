"""Real servers for end-to-end tests: daphne on a free port, a webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.fixtures import ROOT, worker_env
from tests.support.waiting import wait_for


class Daphne:
    """`daphne` serving the project on a socket bound to a free port by the test."""

    def __init__(self, log: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))  # the port is ours from here on: no race
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.log = open(log, "ab")
        self._spawn()

    def _spawn(self) -> None:
        env = worker_env()
        env["AGENTOS_BASE_URL"] = self.url
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "--fd",
                str(self.sock.fileno()),
                "agentos_site.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(self.sock.fileno(),),
            start_new_session=True,
        )
        wait_for(self._answers, timeout=30, message="daphne to answer")

    def restart(self) -> None:
        """SIGKILL daphne, then serve the same listening socket from a new one."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._spawn()

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail("daphne exited:\n" + self.log_path.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(self.url + "/admin/login/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.sock.close()
        self.log.close()


@pytest.fixture
def daphne(transactional_db, tmp_path) -> Iterator[Daphne]:  # type: ignore[no-untyped-def]
    server = Daphne(tmp_path / "daphne.log")
    yield server
    server.stop()


class Receiver:
    """An HTTP server on a free port that records every POST it gets."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                calls.append(
                    {
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "json": json.loads(body),
                    }
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()
