"""The recipes in deploy/ are run, not just written: their commands, signals and timeouts.

For each recipe (systemd units, the compose file) the test takes the
recipe's own command line, runs it against the test database, and stops
it exactly as the recipe's manager would; it passes only when the process
exits by itself, with status 0, within the recipe's stop timeout, leaving
no process (sentinel, worker, zygote, action, browser) for the manager's
final SIGKILL and no temporary home folder behind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.ops.recipes import (
    DEPLOY,
    Service,
    local_argv,
    read_compose,
    read_unit,
    seconds,
    unit_argv,
)
from tests.support.fixtures import ROOT, worker_env
from tests.support.servers import free_port, listening
from tests.support.waiting import wait_for
from workflows.cluster import KILL_AFTER_BOUND_S
from workflows.models import Run
from workflows.services import run_create
from workflows.states import RunStatus

SYSTEMD = DEPLOY / "systemd"
WEB_UNIT = SYSTEMD / "agentos-web@.service"
WORKER_UNIT = SYSTEMD / "agentos-worker@.service"
MIGRATE_UNIT = SYSTEMD / "agentos-migrate.service"
DEFAULT_DRAIN_S = 60.0  # agentos_site/settings.py, AGENTOS_WORKER_DRAIN_S


# --- what the recipes say --------------------------------------------------------


def test_the_units_stop_the_main_process_first_with_room_for_the_drain() -> None:
    web, worker = read_unit(WEB_UNIT)["Service"], read_unit(WORKER_UNIT)["Service"]
    assert web["KillMode"] == ["mixed"] and worker["KillMode"] == ["mixed"]
    assert web["KillSignal"] == ["SIGTERM"] and worker["KillSignal"] == ["SIGTERM"]
    assert worker["Restart"] == ["always"] and web["Restart"] == ["on-failure"]
    # systemd SIGKILLs after TimeoutStopSec: it must cover a whole drain.
    assert seconds(worker["TimeoutStopSec"][0]) >= DEFAULT_DRAIN_S + KILL_AFTER_BOUND_S + 5
    assert unit_argv(read_unit(WORKER_UNIT))[1:] == ["manage.py", "worker"]
    assert unit_argv(read_unit(WEB_UNIT))[1:3] == ["-m", "agentos_site.web"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
@pytest.mark.parametrize("name", ["agentos-web@8001", "agentos-worker@1", "agentos-migrate"])
def test_systemd_accepts_every_unit(tmp_path: Path, name: str) -> None:
    """`systemd-analyze verify` on the units, pointed at this checkout, says nothing.

    The install paths, the service user and the environment file do not
    exist here: they are mapped onto this checkout or left out; every other
    line is checked as systemd reads it.
    """
    for unit in SYSTEMD.glob("*.service"):
        text = unit.read_text()
        text = text.replace("/opt/agentos/.venv/bin/python", sys.executable)
        text = text.replace("/opt/agentos", str(ROOT))
        kept = [
            line
            for line in text.splitlines()
            if not line.startswith(("User=", "Group=", "EnvironmentFile="))
        ]
        (tmp_path / unit.name).write_text("\n".join(kept) + "\n")
    done = subprocess.run(
        ["systemd-analyze", "verify", f"{name}.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        # Units it pulls in that this machine does not have (the databases).
        if "postgresql.service" not in line and "redis-server.service" not in line
    ]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr


def test_the_compose_file_runs_web_worker_postgresql_and_redis() -> None:
    compose = read_compose()
    services = compose["services"]
    assert set(services) == {"db", "redis", "migrate", "web", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("web", "worker", "migrate"):
        assert services[name]["init"] is True, name  # tini: SIGTERM to our process alone
        assert "${AGENTOS_DB_PASSWORD:?" in services[name]["environment"]["DATABASE_URL"]
    assert services["worker"]["command"][1:] == ["manage.py", "worker"]
    assert services["web"]["command"][1:3] == ["-m", "agentos_site.web"]
    grace = seconds(services["worker"]["stop_grace_period"])
    assert grace >= DEFAULT_DRAIN_S + KILL_AFTER_BOUND_S + 5
    assert services["worker"]["stop_signal"] == services["web"]["stop_signal"] == "SIGTERM"
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_image_runs_the_web_command_and_leaves_secrets_out() -> None:
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    import json

    assert json.loads(cmd[4:]) == read_compose()["services"]["web"]["command"]
    assert "chromium" in dockerfile and "executors.sandbox agentos-action" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for path in (".venv", "var", ".git", "deploy/docker/agentos.env", "deploy/docker/.env"):
        assert path in ignored, path
    gitignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/docker/agentos.env" in gitignored and "deploy/docker/.env" in gitignored


# --- what the recipes run, stopped as their managers stop it ---------------------------


def _worker_recipes() -> list:
    compose = read_compose()["services"]["worker"]
    unit = read_unit(WORKER_UNIT)["Service"]
    return [
        pytest.param(
            unit_argv(read_unit(WORKER_UNIT)),
            "mixed",
            seconds(unit["TimeoutStopSec"][0]),
            id="systemd-unit",
        ),
        pytest.param(
            unit_argv(read_unit(WORKER_UNIT)),
            "control-group",
            seconds(unit["TimeoutStopSec"][0]),
            id="systemd-control-group",
        ),
        pytest.param(
            local_argv(compose["command"]),
            "mixed",  # tini passes docker's SIGTERM to its child alone
            seconds(compose["stop_grace_period"]),
            id="compose",
        ),
    ]


@pytest.mark.worker
@pytest.mark.parametrize(("argv", "kill_mode", "timeout_s"), _worker_recipes())
def test_the_worker_recipe_stops_in_time_leaving_nothing(
    transactional_db, operator, tmp_path, argv, kill_mode, timeout_s
) -> None:
    ledger = tmp_path / "ledger"
    service = Service(argv, worker_env(), tmp_path / "worker.log")
    try:
        run = run_create(
            mode="autonomous",
            requester=operator,
            plan={
                "nodes": [
                    {
                        "id": "a",
                        "action": "test.ledger_append",
                        "params": {"ledger": str(ledger), "line": "a"},
                    }
                ]
            },
        )
        wait_for(
            lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED,
            timeout=60,
            message="the recipe's worker to run a run",
        )
        assert service.zygote_homes(), "its action runner was started"

        stopped = service.stop(kill_mode=kill_mode, timeout_s=timeout_s)
    finally:
        service.kill()
    assert stopped.killed == [], service.output()[-3000:]
    assert stopped.code == 0, service.output()[-3000:]
    assert stopped.homes_left == []


def _web_recipes() -> list:
    compose = read_compose()["services"]["web"]
    unit = read_unit(WEB_UNIT)
    return [
        pytest.param(unit, None, seconds(unit["Service"]["TimeoutStopSec"][0]), id="systemd"),
        pytest.param(None, compose, seconds(compose["stop_grace_period"]), id="compose"),
    ]


@pytest.mark.parametrize(("unit", "compose", "timeout_s"), _web_recipes())
def test_the_web_recipe_closes_websockets_with_service_restart(
    transactional_db, reviewer, tmp_path, unit, compose, timeout_s
) -> None:
    """A connected page is told 1012 (reconnect), and the process exits in time."""
    from django.test import Client
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    port = free_port()
    argv = unit_argv(unit, port=port) if unit else local_argv(compose["command"], port=port)
    assert "127.0.0.1" in argv and str(port) in argv, argv
    env = worker_env()
    env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    service = Service(argv, env, tmp_path / "web.log")
    try:
        wait_for(lambda: listening(port), timeout=60, message="the web process to listen")
        browser = Client()
        browser.force_login(reviewer)
        cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
        with connect(
            f"ws://127.0.0.1:{port}/ws/inbox/",
            additional_headers={
                "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}",
                "Origin": f"http://127.0.0.1:{port}",
            },
            open_timeout=10,
        ) as ws:
            stopped = service.stop(kill_mode="mixed", timeout_s=timeout_s)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
    finally:
        service.kill()
    assert closed.value.rcvd is not None, service.output()[-3000:]
    assert closed.value.rcvd.code == 1012
    assert stopped.killed == [] and stopped.code == 0, service.output()[-3000:]
