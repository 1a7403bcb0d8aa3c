"""Login throttling (django-axes) on every login page, and failures audited in bursts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, override_settings

from accounts.models import LoginFailureWindow
from portals.demo import ensure_demo_data
from tests.api.conftest import api_for
from workflows.events import verify_all
from workflows.models import Event

pytestmark = pytest.mark.django_db

LIMIT = 3
LOCKED = b"Too many failed logins: try again later."
PORTAL_SECRETS = {
    "HR_PORTAL_USER": "hr-agent",
    "HR_PORTAL_PASSWORD": "pw-hr",
    "IT_PORTAL_USER": "it-agent",
    "IT_PORTAL_PASSWORD": "pw-it",
    "PROCUREMENT_PORTAL_USER": "buyer",
    "PROCUREMENT_PORTAL_PASSWORD": "pw-p",
}


@pytest.fixture(autouse=True)
def low_limit():  # type: ignore[no-untyped-def]
    with override_settings(AXES_FAILURE_LIMIT=LIMIT):
        yield


def admin_login(username: str, password: str, address: str = "203.0.113.7") -> int:
    # REMOTE_ADDR is only a value here: no traffic goes to that address.
    response = Client(REMOTE_ADDR=address).post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}
    )
    if response.status_code == 429:
        assert LOCKED in response.content
    return response.status_code


def auth_events() -> list[tuple[str, dict]]:
    return [
        (e.type, e.data) for e in Event.objects.filter(type__startswith="auth.").order_by("id")
    ]


def test_a_user_name_is_locked_out_after_repeated_failures(operator) -> None:
    statuses = [admin_login("operator", "wrong", f"203.0.113.{n}") for n in range(1, 5)]
    assert statuses == [200, 200, 429, 429]
    # The right password, from yet another address, waits for the cool-off too.
    assert admin_login("operator", "pw", "203.0.113.99") == 429
    # Another person is not affected.
    assert admin_login("admin", "pw", "198.51.100.1") in (200, 302)


def test_an_address_is_locked_out_whatever_user_names_it_tries(operator, superuser) -> None:
    statuses = [admin_login(f"guess{n}", "wrong") for n in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert admin_login("operator", "pw") == 429
    assert admin_login("operator", "pw", "198.51.100.1") == 302


def test_the_inbox_login_is_the_throttled_admin_login(operator) -> None:
    response = Client().get("/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_burst_of_failures_is_one_event_and_one_lockout_event(operator) -> None:
    for _ in range(40):
        admin_login("operator", "wrong")
    assert auth_events() == [
        ("auth.login_failed", {"user": "operator", "ip": "203.0.113.7", "path": "/admin/login/"}),
        (
            "auth.login_locked_out",
            {"user": "operator", "ip": "203.0.113.7", "failures": LIMIT, "cooloff_s": 900},
        ),
    ]
    assert LoginFailureWindow.objects.get(address="203.0.113.7").failures == 40

    # When the window has passed, the next failure closes it with one summary.
    LoginFailureWindow.objects.update(
        started_at=LoginFailureWindow.objects.get().started_at - timedelta(hours=1)
    )
    admin_login("someone", "wrong")
    kinds = [(t, d.get("failures"), d.get("users")) for t, d in auth_events()[2:]]
    assert kinds == [("auth.login_failures", 40, ["operator"]), ("auth.login_failed", None, None)]
    assert verify_all() == []


def test_a_successful_login_closes_the_window_with_its_count(operator) -> None:
    assert admin_login("operator", "wrong") == 200
    assert admin_login("nobody", "wrong") == 200
    assert admin_login("operator", "pw") == 302
    assert [(t, d.get("failures"), d.get("users")) for t, d in auth_events()] == [
        ("auth.login_failed", None, None),
        ("auth.login_failures", 2, ["operator", "nobody"]),
        ("auth.login", None, None),
    ]
    assert not LoginFailureWindow.objects.exists()
    # The success did not reset the address's count (one valid account must
    # not buy more guesses at others): the next failure locks the address.
    assert admin_login("other", "wrong") == 429


def test_portal_logins_are_throttled_per_portal_user_and_address() -> None:
    ensure_demo_data(PORTAL_SECRETS)

    def portal_login(password: str, address: str = "203.0.113.7") -> int:
        response = Client(REMOTE_ADDR=address).post(
            "/portals/hr/login/", {"username": "hr-agent", "password": password}
        )
        if response.status_code == 429:
            assert LOCKED in response.content
        return response.status_code

    assert [portal_login("wrong", f"203.0.113.{n}") for n in range(1, 5)] == [400, 400, 429, 429]
    assert portal_login("pw-hr", "198.51.100.1") == 429  # the portal user name is locked
    it = Client(REMOTE_ADDR="198.51.100.1").post(
        "/portals/it/login/", {"username": "it-agent", "password": "pw-it"}
    )
    assert it.status_code == 302
    # Portal failures are counted by axes, not audited; a portal lockout is
    # one event, as for AgentOS users (the user name says which portal).
    assert auth_events() == [
        (
            "auth.login_locked_out",
            {
                "user": "portal:hr:hr-agent",
                "ip": "203.0.113.3",
                "failures": LIMIT,
                "cooloff_s": 900,
            },
        )
    ]


def test_api_tokens_are_not_login_attempts_and_stay_as_strict(operator) -> None:
    api = api_for(operator)
    for _ in range(LIMIT + 1):
        admin_login("operator", "wrong", "127.0.0.1")
    assert admin_login("operator", "pw", "127.0.0.1") == 429
    # A token is its own credential: it is neither throttled by a login
    # lockout nor counted as a login attempt, and a wrong one is still a 401.
    assert api.get("/runs").status_code == 200
    wrong = Client().get("/api/v1/runs", headers={"Authorization": "Bearer agt_wrong"})
    assert wrong.status_code == 401
    assert [t for t, _ in auth_events()] == ["auth.login_failed", "auth.login_locked_out"]
