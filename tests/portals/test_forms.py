"""The portals' forms validate on the server and say what is wrong."""

from __future__ import annotations

from datetime import date

import pytest

from portals import services
from portals.demo import ensure_demo_data
from portals.forms import EmployeeForm, ITAccountForm, LoginForm, OrderForm
from portals.models import Employee, LaptopModel, PortalAccount

pytestmark = pytest.mark.django_db

SECRETS = {
    "HR_PORTAL_USER": "hr-agent",
    "HR_PORTAL_PASSWORD": "pw-hr",
    "PROCUREMENT_PORTAL_USER": "buyer",
    "PROCUREMENT_PORTAL_PASSWORD": "pw-p",
}


def employee(name: str = "Ada Lovelace", ref: str | None = None) -> Employee:
    return services.employee_create(
        name=name,
        department="Engineering",
        start_date=date(2026, 1, 5),
        manager="",
        external_ref=ref,
        created_by="t",
    )


def test_login_checks_the_portals_own_accounts() -> None:
    ensure_demo_data(SECRETS)
    assert LoginForm({"username": "hr-agent", "password": "pw-hr"}, portal="hr").is_valid()
    wrong = LoginForm({"username": "hr-agent", "password": "nope"}, portal="hr")
    assert not wrong.is_valid()
    assert wrong.non_field_errors() == ["Invalid username or password."]
    # An HR account is no procurement account.
    assert not LoginForm(
        {"username": "hr-agent", "password": "pw-hr"}, portal="procurement"
    ).is_valid()


def test_demo_data_is_idempotent_and_only_for_configured_portals() -> None:
    assert ensure_demo_data(SECRETS) == ["hr", "procurement"]
    assert ensure_demo_data(SECRETS) == ["hr", "procurement"]
    assert PortalAccount.objects.count() == 2 and LaptopModel.objects.count() == 3


def test_employee_form_names_each_bad_field() -> None:
    form = EmployeeForm({"name": " ", "department": "Legal", "start_date": "tomorrow"})
    assert not form.is_valid()
    assert form.errors["name"] == ["This field is required."]
    assert form.errors["department"][0].startswith("Select a valid choice.")
    assert form.errors["start_date"] == ["Enter a valid date."]


def test_employee_form_refuses_a_reference_already_used() -> None:
    employee(ref="run1-hr-0")
    form = EmployeeForm(
        {
            "name": "Ada",
            "department": "Sales",
            "start_date": "2026-02-01",
            "external_ref": "run1-hr-0",
        }
    )
    assert not form.is_valid()
    assert form.errors["external_ref"] == ["A record with this external reference already exists."]


@pytest.mark.django_db(transaction=True, reset_sequences=True)  # PostgreSQL's too
def test_employees_get_sequential_ids() -> None:
    assert [employee().employee_id, employee("Bob").employee_id] == ["EMP-00001", "EMP-00002"]


def test_it_form_needs_a_known_employee_without_an_account() -> None:
    unknown = ITAccountForm({"employee_id": "EMP-99999"})
    assert not unknown.is_valid()
    assert unknown.errors["employee_id"] == ["No HR employee has the id EMP-99999."]
    ada = employee()
    services.it_account_create(employee=ada, external_ref=None, created_by="t")
    again = ITAccountForm({"employee_id": ada.employee_id.lower()})
    assert not again.is_valid()
    assert again.errors["employee_id"] == [
        f"{ada.employee_id} already has an account: ada.lovelace@corp.example."
    ]


def test_generated_emails_are_unique_and_plain_ascii() -> None:
    first = services.it_account_create(
        employee=employee("Zoë  O'Brien"), external_ref=None, created_by="t"
    )
    second = services.it_account_create(
        employee=employee("Zoe O Brien"), external_ref=None, created_by="t"
    )
    assert (first.email, second.email) == ("zoe.o.brien@corp.example", "zoe.o.brien2@corp.example")


def test_order_form_refuses_an_unknown_model_listing_the_available_ones() -> None:
    ensure_demo_data({})
    LaptopModel.objects.create(name="Old Model", available=False)
    account = services.it_account_create(employee=employee(), external_ref=None, created_by="t")
    listing = "Dell Latitude 7450, MacBook Pro 14, ThinkPad X1 Carbon"
    unknown = OrderForm({"email": account.email, "laptop_model": "Old Model"})
    assert not unknown.is_valid()
    assert unknown.errors["laptop_model"] == [
        f"Unknown laptop model 'Old Model'. Available models: {listing}."
    ]
    empty = OrderForm({"email": account.email, "laptop_model": ""})
    assert not empty.is_valid()
    assert empty.errors["laptop_model"] == [f"Choose a laptop model. Available models: {listing}."]
    good = OrderForm({"email": account.email.upper(), "laptop_model": "macbook pro 14"})
    assert good.is_valid(), good.errors
    assert good.cleaned_data["laptop_model"].name == "MacBook Pro 14"


def test_order_form_needs_an_it_account_email() -> None:
    ensure_demo_data({})
    form = OrderForm({"email": "nobody@corp.example", "laptop_model": "MacBook Pro 14"})
    assert not form.is_valid()
    assert form.errors["email"] == ["No IT account has the email nobody@corp.example."]
    assert not OrderForm({"email": "not an email", "laptop_model": "x"}).is_valid()
