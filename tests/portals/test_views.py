"""The portals' pages: their own logins, CSRF, list and detail pages, 4xx on bad input."""

from __future__ import annotations

import pytest
from django.test import Client

from portals.demo import ensure_demo_data
from portals.models import Employee, HardwareOrder

pytestmark = pytest.mark.django_db

SECRETS = {
    "HR_PORTAL_USER": "hr-agent",
    "HR_PORTAL_PASSWORD": "pw-hr",
    "IT_PORTAL_USER": "it-agent",
    "IT_PORTAL_PASSWORD": "pw-it",
    "PROCUREMENT_PORTAL_USER": "buyer",
    "PROCUREMENT_PORTAL_PASSWORD": "pw-p",
}


@pytest.fixture
def client_for() -> object:
    ensure_demo_data(SECRETS)

    def make(portal: str) -> Client:
        client = Client()
        prefix = portal.upper()
        response = client.post(
            f"/portals/{portal}/login/",
            {
                "username": SECRETS[f"{prefix}_PORTAL_USER"],
                "password": SECRETS[f"{prefix}_PORTAL_PASSWORD"],
            },
        )
        assert response.status_code == 302
        return client

    return make


def test_pages_need_a_portal_login_not_an_agentos_user(client, superuser) -> None:
    client.force_login(superuser)
    response = client.get("/portals/hr/")
    assert response.status_code == 302
    assert response["Location"] == "/portals/hr/login/?next=/portals/hr/"


def test_a_bad_login_is_a_400_with_the_reason(client) -> None:
    ensure_demo_data(SECRETS)
    response = client.post("/portals/hr/login/", {"username": "hr-agent", "password": "x"})
    assert response.status_code == 400
    assert b"Invalid username or password." in response.content
    assert client.get("/portals/nowhere/login/").status_code == 404


def test_a_login_for_one_portal_does_not_open_another(client_for) -> None:
    hr = client_for("hr")
    assert hr.get("/portals/hr/").status_code == 200
    assert hr.get("/portals/it/").status_code == 302


def test_forms_are_csrf_protected() -> None:
    ensure_demo_data(SECRETS)
    client = Client(enforce_csrf_checks=True)
    response = client.post("/portals/hr/login/", {"username": "hr-agent", "password": "pw-hr"})
    assert response.status_code == 403


def test_create_list_and_detail_an_employee(client_for) -> None:
    hr = client_for("hr")
    response = hr.post(
        "/portals/hr/employees/new/",
        {
            "name": "Ada Lovelace",
            "department": "Engineering",
            "start_date": "2026-03-02",
            "external_ref": "ref-1",
        },
    )
    assert response.status_code == 302
    employee = Employee.objects.get()
    assert response["Location"] == f"/portals/hr/employees/{employee.employee_id}/"
    detail = hr.get(response["Location"]).content.decode()
    assert f'<dd data-field="employee_id">{employee.employee_id}</dd>' in detail
    listed = hr.get("/portals/hr/?ref=ref-1").content.decode()
    assert employee.employee_id in listed
    assert "No employees with reference other" in hr.get("/portals/hr/?ref=other").content.decode()
    assert hr.get("/portals/hr/employees/EMP-99999/").status_code == 404


def test_an_invalid_form_is_a_400_naming_the_field_and_saves_nothing(client_for) -> None:
    procurement = client_for("procurement")
    response = procurement.post(
        "/portals/procurement/orders/new/",
        {"email": "nobody@corp.example", "laptop_model": "Banana"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "No IT account has the email nobody@corp.example." in page
    assert "Unknown laptop model &#x27;Banana&#x27;. Available models:" in page
    assert '<li data-model="MacBook Pro 14">' in page
    assert HardwareOrder.objects.count() == 0


def test_the_catalog_lists_the_laptops(client_for) -> None:
    page = client_for("procurement").get("/portals/procurement/catalog/").content.decode()
    assert "ThinkPad X1 Carbon" in page and "MacBook Pro 14" in page


def test_logout_forgets_the_portal_login(client_for) -> None:
    it = client_for("it")
    assert it.post("/portals/it/logout/").status_code == 302
    assert it.get("/portals/it/").status_code == 302


def test_test_endpoints_exist_only_in_the_test_urls(client, settings) -> None:
    assert client.get("/portals/test/go/?to=/portals/").status_code == 302
    settings.ROOT_URLCONF = "agentos_site.urls"
    assert client.get("/portals/test/go/?to=/portals/").status_code == 404
    assert client.get("/portals/test/hang/").status_code == 404
