"""Browser actions against the real portals in real Chromium, through the runner."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from executors.base import ActionFailed
from executors.runner import Runner
from portals.models import Employee, HardwareOrder, ITAccount
from tests.executors._procs import is_gone
from tests.support.portal_fixtures import (
    chromium_family,
    parent_of,
    spare_children,
    spare_chromium,
)
from tests.support.waiting import wait_for
from workflows import executor_config

pytestmark = pytest.mark.browser

ADA = {"name": "Ada Lovelace", "department": "Engineering"}


def test_hr_creates_an_employee_with_the_key_as_reference_and_a_screenshot(
    run_action, tmp_path
) -> None:
    result = run_action("hr.create_employee", {**ADA, "manager": "Grace Hopper"})
    assert result.status == "succeeded", (result.error, result.log)
    employee = Employee.objects.get()
    assert result.output == {"employee_id": employee.employee_id}
    assert (employee.name, employee.department, employee.manager) == (
        "Ada Lovelace",
        "Engineering",
        "Grace Hopper",
    )
    assert employee.external_ref == "run1-node-0" and employee.created_by == "hr-agent"
    shots = list(tmp_path.glob("evidence-*/hr-created.png"))
    assert len(shots) == 1 and shots[0].read_bytes().startswith(b"\x89PNG")


def test_the_same_key_twice_finds_the_record_instead_of_making_another(run_action) -> None:
    first = run_action("hr.create_employee", ADA)
    second = run_action("hr.create_employee", ADA)
    assert first.status == second.status == "succeeded", (first.error, second.error)
    assert first.output == second.output
    assert Employee.objects.count() == 1


def cpu_seconds(pid: int | None) -> float:
    """Return the CPU time ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_browser(cmd: str) -> bool:
    """Chromium's browser process: not a helper it starts (renderers, zygotes,
    GPU and network processes carry --type=; crashpad has its own binary)."""
    return "--type=" not in cmd and "crashpad" not in cmd.split(" ", 1)[0]


def browsers_in(seen: dict[int, tuple[str, int | None]]) -> set[int]:
    """The browser processes among ``seen`` (pid -> command line, parent).

    A process Chromium has forked but not yet exec'd still carries the
    browser's command line; its parent is a Chromium process, while the
    browser's own parent is Playwright's driver.
    """
    return {pid for pid, (cmd, parent) in seen.items() if is_browser(cmd) and parent not in seen}


def watch_chromium(zygote: int | None, into: dict[int, tuple[str, int | None]]) -> bool:
    """Heartbeat: add the Chromium of the zygote's actions to ``into``."""
    for pid, cmd in chromium_family(zygote).items():
        into.setdefault(pid, (cmd, parent_of(pid)))
    return True


def test_each_action_gets_its_own_browser_started_ahead_of_its_request(run_action) -> None:
    """A spare child starts Chromium before the request; the action uses that
    browser, never one another action used, and it ends with the action."""
    run_action("hr.create_employee", ADA, key="warm-0")  # the family's first spare
    zygote = executor_config.runner().zygote_pid
    seen: list[dict[int, str]] = []
    for key in ("warm-1", "warm-2"):
        # The spare that will take the request has its browser up by now.
        wait_for(
            lambda: any(is_browser(cmd) for cmd in spare_chromium(zygote).values()),
            timeout=60,
            message="a pre-started browser",
        )
        ahead = set(spare_chromium(zygote))
        mine: dict[int, tuple[str, int | None]] = {}
        result = run_action(
            "hr.create_employee",
            {**ADA, "name": f"Ada {key}"},
            key=key,
            heartbeat=lambda into=mine: watch_chromium(zygote, into),
            heartbeat_every_s=0.02,
        )
        assert result.status == "succeeded", (result.error, result.log)
        assert "pre-started ahead of the request" in result.log
        assert mine, "the action's Chromium was never seen"
        # Renderers start with the page; the browser process itself is the
        # one the spare started before the request.
        browsers = browsers_in(mine)
        assert browsers and browsers <= ahead, (
            "the action started its own browser",
            {pid: (mine[pid][0][:200], mine[pid][1]) for pid in browsers},
        )
        assert all(is_gone(pid) for pid in mine), "the action's browser outlived it"
        seen.append(mine)
    assert not set(seen[0]) & set(seen[1])
    assert Employee.objects.count() == 3


def test_a_pool_of_browsers_fills_while_idle_and_serves_actions_in_a_row(
    run_action, settings
) -> None:
    """With three spares, two actions in a row each take a browser started
    before either request; the pool fills one at a time while idle."""
    pool = Runner(
        tuple(settings.AGENTOS_ACTION_MODULES),
        python_path=(str(settings.BASE_DIR),),
        warm_spares=3,
    )

    def ready_browsers() -> set[int]:
        spares = spare_chromium(pool.zygote_pid)
        return browsers_in({pid: (cmd, parent_of(pid)) for pid, cmd in spares.items()})

    try:
        first = run_action("hr.create_employee", ADA, key="pool-0", runner=pool)
        assert first.status == "succeeded", (first.error, first.log)
        # A family's pool starts with its first request, which had none.
        assert "pre-started ahead of the request" not in first.log
        started, cpu = time.monotonic(), cpu_seconds(pool.zygote_pid)
        wait_for(lambda: len(ready_browsers()) == 3, timeout=90, message=ready_browsers)
        # While spares warm, the zygote waits for their word; it does not spin.
        busy = (cpu_seconds(pool.zygote_pid) - cpu) / (time.monotonic() - started)
        assert busy < 0.1, f"the zygote used {busy:.0%} of a core while the pool filled"
        ahead = set(spare_chromium(pool.zygote_pid))
        used: set[int] = set()
        for key in ("pool-1", "pool-2"):
            mine: dict[int, tuple[str, int | None]] = {}
            result = run_action(
                "hr.create_employee",
                {**ADA, "name": f"Ada {key}"},
                key=key,
                runner=pool,
                heartbeat=lambda into=mine: watch_chromium(pool.zygote_pid, into),
                heartbeat_every_s=0.02,
            )
            assert result.status == "succeeded", (result.error, result.log)
            assert "pre-started ahead of the request" in result.log
            browsers = browsers_in(mine)
            assert browsers and browsers <= ahead, "the action started its own browser"
            assert not browsers & used, "two actions shared a browser"
            used |= browsers
        # Idle again: refilled to three, none of them a browser an action used.
        wait_for(lambda: len(ready_browsers()) == 3, timeout=90, message=ready_browsers)
        assert not ready_browsers() & used
        assert Employee.objects.count() == 3
        idle = set(spare_chromium(pool.zygote_pid))
    finally:
        pool.close()
    assert idle
    wait_for(
        lambda: all(is_gone(pid) for pid in idle),
        timeout=10,
        message="closing the runner to end the pre-started browsers",
    )


def test_idle_spares_retire_and_the_next_action_brings_the_pool_back(run_action, settings) -> None:
    """Spares unused for the retire delay are stopped (an idle worker holds no
    browser); the runner's live count follows them; the next browser action
    starts its own and the pool fills again after it."""
    pool = Runner(
        tuple(settings.AGENTOS_ACTION_MODULES),
        python_path=(str(settings.BASE_DIR),),
        warm_spares=2,
        retire_spares_s=3,
    )

    def ready_browsers() -> set[int]:
        spares = spare_chromium(pool.zygote_pid)
        return browsers_in({pid: (cmd, parent_of(pid)) for pid, cmd in spares.items()})

    try:
        first = run_action("hr.create_employee", ADA, key="retire-0", runner=pool)
        assert first.status == "succeeded", (first.error, first.log)
        wait_for(lambda: pool.ready_spares == 2, timeout=90, message=ready_browsers)
        warm = set(spare_chromium(pool.zygote_pid))
        assert len(ready_browsers()) == 2, "the live count is the browsers really up"
        # Nothing runs: the spares retire, their browsers with them.
        wait_for(lambda: pool.ready_spares == 0, timeout=60, message=ready_browsers)
        wait_for(lambda: all(is_gone(pid) for pid in warm), timeout=10, message=warm)
        assert spare_chromium(pool.zygote_pid) == {}
        # ...and so do their temp folders (a browser profile each): only the
        # plain actions' spare, waiting, keeps one.
        left = {p.name for p in (Path(pool._home or "/nonexistent") / "tmp").iterdir()}
        assert left <= {str(pid) for pid in spare_children(pool.zygote_pid)}, left
        # ...and stay retired: no refill without a request.
        time.sleep(1)
        assert spare_chromium(pool.zygote_pid) == {} and pool.ready_spares == 0
        again = run_action(
            "hr.create_employee", {**ADA, "name": "Ada B"}, key="retire-1", runner=pool
        )
        assert again.status == "succeeded", (again.error, again.log)
        assert not set(spare_chromium(pool.zygote_pid)) & warm
        wait_for(lambda: pool.ready_spares == 2, timeout=90, message=ready_browsers)
        assert Employee.objects.count() == 2
    finally:
        pool.close()
    assert pool.ready_spares == 0


def test_a_step_killed_after_the_portal_saved_finds_its_record_on_retry(run_action) -> None:
    """Kill the action's whole process tree once the portal has the record."""
    zygote = executor_config.runner().zygote_pid
    browsers: dict[int, str] = {}

    def keep_going() -> bool:
        browsers.update(chromium_family(executor_config.runner().zygote_pid))
        return not Employee.objects.exists()

    killed = run_action("hr.create_employee", ADA, heartbeat=keep_going, heartbeat_every_s=0.02)
    assert killed.status == "killed", (killed.status, killed.error)
    assert browsers, "Chromium was never seen running"
    assert chromium_family(zygote or executor_config.runner().zygote_pid) == {}
    assert Employee.objects.count() == 1

    retried = run_action("hr.create_employee", ADA)
    assert retried.status == "succeeded", retried.error
    assert Employee.objects.count() == 1
    assert retried.output == {"employee_id": Employee.objects.get().employee_id}


def test_it_and_procurement_chain_through_the_portals(run_action) -> None:
    hr = run_action("hr.create_employee", ADA, key="k-hr")
    it = run_action("it.create_account", hr.output, key="k-it")
    assert it.status == "succeeded", it.error
    assert it.output == {"email": "ada.lovelace@corp.example"}
    assert ITAccount.objects.get().employee.employee_id == hr.output["employee_id"]
    order = run_action(
        "procurement.order_laptop",
        {"email": it.output["email"], "model": "ThinkPad X1 Carbon"},
        key="k-p",
    )
    assert order.status == "succeeded", order.error
    placed = HardwareOrder.objects.get()
    assert order.output == {"order_id": placed.order_id, "laptop_model": "ThinkPad X1 Carbon"}
    assert placed.email == "ada.lovelace@corp.example" and placed.external_ref == "k-p"


def test_an_unknown_laptop_asks_for_one_the_portal_offers_then_continues(
    run_action, portals
) -> None:
    run_action("hr.create_employee", ADA, key="k-hr")
    run_action(
        "it.create_account", {"employee_id": Employee.objects.get().employee_id}, key="k-it"
    )
    email = ITAccount.objects.get().email
    asked = run_action(
        "procurement.order_laptop", {"email": email, "model": "Banana 3000"}, key="k-p"
    )
    assert asked.status == "needs_input", asked.error
    request = asked.needs_input
    assert request["fields"] == {
        "laptop_model": {
            "type": "string",
            "title": "Laptop model",
            "enum": ["Dell Latitude 7450", "MacBook Pro 14", "ThinkPad X1 Carbon"],
        }
    }
    assert "Banana 3000" in request["message"]
    assert request["state"] == {
        "url": f"{portals}/portals/procurement/orders/new/?email={quote(email)}"
    }
    assert HardwareOrder.objects.count() == 0

    done = run_action(
        "procurement.order_laptop",
        {"email": email, "model": "Banana 3000"},
        key="k-p",
        resume_state=request["state"],
        resume_values={"laptop_model": "MacBook Pro 14"},
    )
    assert done.status == "succeeded", done.error
    assert HardwareOrder.objects.get().laptop.name == "MacBook Pro 14"


def test_wrong_portal_credentials_fail_the_step_clearly(run_action) -> None:
    wrong = {"HR_PORTAL_USER": "hr-agent", "HR_PORTAL_PASSWORD": "not-the-password"}
    result = run_action("hr.create_employee", ADA, secrets=wrong)
    assert result.status == "failed"
    assert result.error == (
        "the HR portal refused the login: invalid username or password "
        "(check the secrets HR_PORTAL_USER and HR_PORTAL_PASSWORD)"
    )
    assert "not-the-password" not in result.log
    assert Employee.objects.count() == 0


def test_the_portals_own_validation_message_becomes_the_step_error(run_action) -> None:
    result = run_action("it.create_account", {"employee_id": "EMP-99999"})
    assert result.status == "failed"
    assert result.error == (
        "the IT portal refused an account for EMP-99999: "
        "employee_id: No HR employee has the id EMP-99999."
    )
    assert ITAccount.objects.count() == 0


def test_a_value_the_portal_does_not_offer_fails_naming_the_choices(run_action) -> None:
    result = run_action("hr.create_employee", {"name": "Ada", "department": "Legal"})
    assert result.status == "failed"
    assert result.error == (
        "the HR portal has no department 'Legal'; it offers Engineering, Sales, Finance, People"
    )
    assert Employee.objects.count() == 0


def test_a_missing_secret_names_it(run_action) -> None:
    result = run_action("hr.create_employee", ADA, secrets={})
    assert result.status == "failed"
    assert result.error == "secret 'HR_PORTAL_USER' is not configured"


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<title>outside</title>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def outside_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on another free port that records every request."""
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_a_redirect_off_the_portal_origin_is_blocked(run_action, outside_server) -> None:
    outside, hits = outside_server
    result = run_action("test.portal_visit", {"path": f"/portals/test/go/?to={outside}/x"})
    assert result.status == "failed", (result.output, hits)
    assert result.error.startswith(
        f"navigation to {outside}/x was blocked: it is outside the allowed portal origins"
    )
    assert hits == []


def test_a_saved_resume_url_off_the_portal_is_never_opened(run_action, outside_server) -> None:
    outside, hits = outside_server
    result = run_action(
        "procurement.order_laptop",
        {"email": "a@corp.example"},
        resume_state={"url": f"{outside}/steal"},
        resume_values={"laptop_model": "MacBook Pro 14"},
    )
    assert result.status == "failed" and "was blocked" in result.error
    assert hits == []


def test_the_browser_is_the_configured_debian_chromium() -> None:
    from executors.actions.browser.session import resolve_executable

    assert Path(resolve_executable(settings.AGENTOS_BROWSER_EXECUTABLE)).name == "chromium"
    with pytest.raises(ActionFailed, match="no Chromium at /nowhere/chromium"):
        resolve_executable("/nowhere/chromium")
