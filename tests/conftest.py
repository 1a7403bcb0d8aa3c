"""The suite's plugins (fixtures in tests/support/) and its session hooks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

pytest_plugins = [
    "tests.support.browsers",
    "tests.support.fixtures",
    "tests.support.gates",
    "tests.support.live_servers",
    "tests.support.portal_fixtures",
]


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
