"""Shared fixtures: users with roles, a clean workspace, a real qcluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float = 30.0,
    every: float = 0.05,
    message: str = "condition",
) -> object:
    """Poll until predicate() is truthy; fail the test with `message` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture(autouse=True)
def audit_checkpoints(  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory, settings
) -> Path:
    """A checkpoint folder of the test's own: its database is rolled back after it."""
    folder = tmp_path_factory.mktemp("audit")
    settings.AGENTOS_AUDIT_CHECKPOINT_DIR = folder
    return folder


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


def _user(roles, username: str, group: str | None, superuser: bool = False):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", "pw", is_staff=True, is_superuser=superuser
    )
    if group:
        user.groups.add(roles[group])
    return user


@pytest.fixture
def operator(roles):  # type: ignore[no-untyped-def]
    return _user(roles, "operator", "Operators")


@pytest.fixture
def reviewer(roles):  # type: ignore[no-untyped-def]
    return _user(roles, "reviewer", "Reviewers")


@pytest.fixture
def auditor(roles):  # type: ignore[no-untyped-def]
    return _user(roles, "auditor", "Auditors")


@pytest.fixture
def superuser(roles):  # type: ignore[no-untyped-def]
    return _user(roles, "admin", None, superuser=True)


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

    def start(self) -> Cluster:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", *self.args],
            cwd=ROOT,
            env=self.env or worker_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole cluster at once (sentinel, pusher, workers, zygotes)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        """Stop like Ctrl-C would (SIGTERM to the sentinel), then sweep the group."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
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
    for c in started:
        try:
            c.stop()
        except ProcessLookupError:
            pass
        # Shown with a failing test's report: what the workers said.
        print(f"--- {c.log_path.name} (last 4000 characters) ---")
        print(c.output()[-4000:])


def _action_user_gid() -> int | None:
    """The action user's group when actions drop to it (executors.sandbox)."""
    from executors.sandbox import Sandbox

    sandbox = Sandbox(user=os.environ.get("AGENTOS_ACTION_USER") or "agentos-action").resolve()
    return sandbox.gid if sandbox.drops else None


def pytest_configure(config: pytest.Config) -> None:
    """Keep pytest's folders out of /tmp/pytest-of-root when actions change user.

    Every pytest session started as root resets that shared folder to 0700,
    which would cut the action user off from a running session's tmp_path.
    """
    if config.option.basetemp is None and _action_user_gid() is not None:
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="agentos-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own:
        shutil.rmtree(own, ignore_errors=True)


_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """pytest's folder of the test, shared with the action user's group.

    Test actions write ledgers and files there; when actions run as the
    action user (executors.sandbox: root worker, user present), pytest's
    0700 folder would refuse them.
    """
    from executors.sandbox import Sandbox, share_dirs

    sandbox = Sandbox(user=settings.AGENTOS_ACTION_USER).resolve()
    if sandbox.gid is not None and sandbox.drops:
        share_dirs([str(tmp_path)], sandbox.gid)
    return tmp_path
