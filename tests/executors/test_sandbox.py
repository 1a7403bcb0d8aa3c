"""Actions run as a user of their own, within limits, and cannot read the worker.

The engine's runner (settings: AGENTOS_ACTION_USER and the limits) with the
hostile test actions of tests.support.sandbox_actions. Changing user needs
a root worker: CI runs as root with scripts/setup.sh having created the
user; elsewhere the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from agentos_site.env import development_secret_key
from executors.runner import Runner
from executors.sandbox import Sandbox
from workflows import executor_config

from .conftest import PYTHON_PATH, TEST_MODULES, MakeContext

MODULES = (*TEST_MODULES, "tests.support.sandbox_actions")


def _needs_action_user() -> Sandbox:
    if os.geteuid() != 0:
        pytest.skip("changing to the action user needs a root worker (CI runs as root)")
    sandbox = executor_config.sandbox().resolve()
    assert sandbox.drops, (
        f"the action user {settings.AGENTOS_ACTION_USER!r} is missing: run "
        "scripts/setup.sh as root to create it"
    )
    return sandbox


@pytest.fixture
def engine_runner() -> Iterator[Runner]:
    """A runner configured like the engine's, that also knows the test actions."""
    runner = Runner(MODULES, python_path=PYTHON_PATH, sandbox=executor_config.sandbox())
    yield runner
    runner.close()


@pytest.mark.django_db
def test_an_action_cannot_read_the_workers_environment_database_or_secret_key(
    engine_runner: Runner, make_ctx: MakeContext, root: Path
) -> None:
    sandbox = _needs_action_user()
    # A worker's environment holds every secret and DJANGO_SECRET_KEY.
    environ = f"/proc/{os.getpid()}/environ"
    assert Path(environ).read_bytes()
    # The development key file, written by the code that writes it in production.
    development_secret_key(settings.VAR_DIR)
    key_file = str(settings.VAR_DIR / "secret_key")
    paths = [environ, key_file]
    if connection.vendor == "sqlite":
        paths.append(connection.settings_dict["NAME"])
    result = engine_runner.run(
        "test.snoop", {"read": paths, "write": [str(root)]}, make_ctx(), timeout_s=60
    )
    assert result.status == "succeeded", (result.error, result.log)
    output = result.output or {}
    assert output["read"] == dict.fromkeys(paths, "PermissionError")
    assert (output["uid"], output["gid"], output["groups"]) == (sandbox.uid, sandbox.gid, [])
    # What actions must write, they still can: the file root, the step's
    # evidence folder and their own TMPDIR.
    assert set(output["wrote"].values()) == {"ok"}, output["wrote"]
    assert (root / "snoop.txt").read_text() == "written by the action\n"


@pytest.mark.django_db
def test_files_the_worker_adds_to_a_root_later_stay_writable_for_actions(
    engine_runner: Runner, make_ctx: MakeContext, root: Path
) -> None:
    _needs_action_user()
    first = engine_runner.run("test.snoop", {"write": [str(root)]}, make_ctx(), timeout_s=60)
    assert first.status == "succeeded", first.error
    # Added by the worker after the root was shared (umask 007, setgid folder).
    (root / "later").mkdir()
    (root / "later" / "snoop.txt").write_text("the worker's\n")
    again = engine_runner.run(
        "test.snoop", {"write": [str(root / "later")]}, make_ctx(), timeout_s=60
    )
    assert again.status == "succeeded", again.error
    assert again.output and again.output["wrote"][str(root / "later")] == "ok"
    assert (root / "later" / "snoop.txt").read_text() == "written by the action\n"


def test_action_processes_run_within_the_configured_limits(make_ctx: MakeContext) -> None:
    sandbox = Sandbox(
        user=settings.AGENTOS_ACTION_USER,
        max_processes=3000,
        max_file_mb=64,
        max_cpu_s=120,
        browser_memory_mb=1500,
    )
    runner = Runner(MODULES, python_path=PYTHON_PATH, sandbox=sandbox)
    try:
        plain = runner.run("test.snoop", {}, make_ctx(), timeout_s=60)
        browser = runner.run("test.snoop_browser", {}, make_ctx(), timeout_s=60)
    finally:
        runner.close()
    assert plain.status == browser.status == "succeeded", (plain.error, browser.error)
    assert plain.output and browser.output
    for output in (plain.output, browser.output):
        limits = output["limits"]
        assert limits["Max file size"] == str(64 << 20)
        assert limits["Max cpu time"] == "120"
        assert limits["Max core file size"] == "0"
        if runner.sandbox.drops:
            assert limits["Max processes"] == "3000"
    # Browsers get a data (writable memory) cap instead of an address-space one.
    assert browser.output["limits"]["Max data size"] == str(1500 << 20)
    assert browser.output["limits"]["Max address space"] == "unlimited"
    assert plain.output["limits"]["Max address space"] == str(1024 << 20)


def test_a_file_over_the_size_limit_fails_the_action(make_ctx: MakeContext) -> None:
    runner = Runner(
        MODULES,
        python_path=PYTHON_PATH,
        sandbox=Sandbox(user=settings.AGENTOS_ACTION_USER, max_file_mb=2),
    )
    try:
        small = runner.run("test.write_file", {"mb": 1}, make_ctx(), timeout_s=60)
        big = runner.run("test.write_file", {"mb": 3}, make_ctx(), timeout_s=60)
    finally:
        runner.close()
    assert small.status == "succeeded", small.error
    assert big.status == "crashed"
    assert "File too large" in (big.error or "")


def test_a_result_over_the_limit_fails_naming_it(
    engine_runner: Runner, make_ctx: MakeContext
) -> None:
    result = engine_runner.run("test.flood_result", {"mb": 12}, make_ctx(), timeout_s=120)
    assert result.status == "failed"
    assert result.error == (
        "the action's result is larger than the 8 MiB limit; its processes were killed"
    )
    assert result.output is None


def test_a_log_without_end_fails_naming_the_limit(
    engine_runner: Runner, make_ctx: MakeContext
) -> None:
    result = engine_runner.run("test.flood_log", {}, make_ctx(), timeout_s=300)
    assert result.status == "failed"
    assert result.error == (
        "the action wrote more than the 64 MiB limit to its log "
        "(stdout and stderr); its processes were killed"
    )
    # Only the tail is kept: the worker's memory did not grow with the flood.
    assert 0 < len(result.log) <= 4000


def test_the_action_user_is_a_system_user_without_a_login() -> None:
    _needs_action_user()
    entry = pwd.getpwnam(settings.AGENTOS_ACTION_USER)
    assert entry.pw_uid != 0 and entry.pw_shell.endswith("nologin")


def test_check_deploy_warns_when_a_root_worker_has_no_action_user(settings) -> None:
    from workflows.checks import check_action_user

    if os.geteuid() != 0:
        pytest.skip("only a root worker can change user")
    settings.AGENTOS_ACTION_USER = "agentos-no-such-user"
    [warning] = check_action_user(None)
    assert warning.id == "agentos.W014" and "would run as root" in warning.msg
    settings.AGENTOS_ACTION_USER = "agentos-action"
    assert check_action_user(None) == []


def test_a_database_left_readable_by_an_earlier_version_is_closed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.fixtures import ROOT

    _needs_action_user()
    var = tmp_path / "var"
    var.mkdir()
    old = var / "agentos.sqlite3"
    old.write_bytes(b"")
    old.chmod(0o644)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AGENTOS_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="agentos_site.settings", AGENTOS_VAR_DIR=str(var))
    subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert old.stat().st_mode & 0o777 == 0o640
    assert (var / "secret_key").stat().st_mode & 0o777 == 0o600
