"""Shared fixtures: users with roles, a clean workspace, a real qcluster.

Registered for every test through ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def audit_checkpoints(  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory, settings
) -> Path:
    """A checkpoint folder of the test's own: its database is rolled back after it."""
    folder = tmp_path_factory.mktemp("audit")
    settings.AGENTOS_AUDIT_CHECKPOINT_DIR = folder
    return folder


@pytest.fixture(autouse=True)
def task_queue_emptied() -> Iterator[None]:
    """With Redis, the session's task queue is emptied after each test, as its database is.

    On the embedded default the queue is a table, flushed with the test's
    database. Redis's list outlives it: a task queued by a test that started
    no worker (a run created through the API or a service) reached a later
    test's workers, for a run that test's database does not have (a
    RunNotFound traceback in that test's worker log).
    """
    from django_q.conf import Conf

    from workflows.broker import task_broker

    # The session's broker, taken before the test can point Conf.REDIS at a
    # server of its own (the Redis restart test) that is gone by the end.
    broker = task_broker() if Conf.REDIS else None
    yield
    if broker is not None:
        broker.purge_queue()


@pytest.fixture
def workspace() -> Iterator[Path]:
    """The first files root, emptied before and after the test."""
    root = Path(settings.AGENTOS_FILES_ROOTS[0])
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def roles(db):  # type: ignore[no-untyped-def]
    from agentos_site.roles import ensure_roles

    return ensure_roles()


def make_user(roles, username: str, group: str | None, superuser: bool = False):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", "pw", is_staff=True, is_superuser=superuser
    )
    if group:
        user.groups.add(roles[group])
    return user


@pytest.fixture
def operator(roles):  # type: ignore[no-untyped-def]
    return make_user(roles, "operator", "Operators")


@pytest.fixture
def reviewer(roles):  # type: ignore[no-untyped-def]
    return make_user(roles, "reviewer", "Reviewers")


@pytest.fixture
def auditor(roles):  # type: ignore[no-untyped-def]
    return make_user(roles, "auditor", "Auditors")


@pytest.fixture
def superuser(roles):  # type: ignore[no-untyped-def]
    return make_user(roles, "admin", None, superuser=True)


def worker_env() -> dict[str, str]:
    """The environment a qcluster subprocess needs to share the test database."""
    from django.db import connection

    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:  # the test database pytest-django created, e.g. test_agentos
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
    env["PYTHONPATH"] = str(ROOT)
    # The test's own checkpoints, which describe the test's own database.
    env["AGENTOS_AUDIT_CHECKPOINT_DIR"] = str(settings.AGENTOS_AUDIT_CHECKPOINT_DIR)
    return env


class Cluster:
    """A real `manage.py worker` process (the deployed command) in its own process group."""

    def __init__(
        self, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.log_path = log
        self.env = env  # default: worker_env(), the test database
        self.args = args  # e.g. ("--drain-s", "1")
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = False  # stop() sent its SIGTERM

    def start(self) -> Cluster:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", *self.args],
            cwd=ROOT,
            env=self.env or worker_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_running(self, timeout: float = 120) -> Cluster:
        """Wait until the worker says it runs (django-q2's cluster started).

        For a test whose own deadline is about what happens after a run is
        created, not about how long a worker takes to start on a busy machine.
        """

        def running() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail("the worker exited:\n" + self.output()[-3000:])
            return " running" in self.output()

        wait_for(running, timeout=timeout, every=0.1, message="the worker to run")
        return self

    def kill(self) -> None:
        """SIGKILL the whole cluster at once (sentinel, pusher, workers, zygotes)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def begin_stop(self) -> None:
        """Send the stop signal of `stop()` (once: a second cuts the drain short)."""
        if self.proc is not None and self.proc.poll() is None and not self.stopping:
            self.stopping = True
            self.proc.terminate()

    def stop(self) -> None:
        """Stop like Ctrl-C would (SIGTERM to the sentinel), then sweep the group."""
        if self.proc is None or (self.proc.poll() is not None and not self.stopping):
            return
        self.begin_stop()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.log.close()

    def signal(self, signum: int, *, group: bool = False) -> None:
        """Send ``signum`` to the main process, or to its whole process group."""
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def cluster(transactional_db, tmp_path) -> Iterator[Callable[[], Cluster]]:  # type: ignore[no-untyped-def]
    """Start worker processes on demand; all are stopped after the test."""
    started: list[Cluster] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Cluster:
        c = Cluster(tmp_path / f"qcluster-{len(started)}.log", env, args).start()
        started.append(c)
        return c

    yield start
    # All drain at once: a test's workers stop side by side, not one after another.
    for c in started:
        try:
            c.begin_stop()
        except ProcessLookupError:
            pass
    for c in started:
        try:
            c.stop()
        except ProcessLookupError:
            pass
        # Shown with a failing test's report: what the workers said.
        print(f"--- {c.log_path.name} (last 4000 characters) ---")
        print(c.output()[-4000:])
