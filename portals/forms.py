"""The portals' HTML forms, each validating on the server with clear messages."""

from __future__ import annotations

from typing import Any

from django import forms

from portals.models import (
    Department,
    Employee,
    HardwareOrder,
    ITAccount,
    LaptopModel,
    PortalAccount,
)

REF_HELP = "Your own reference for this request; sending it again finds the same record."


class LoginForm(forms.Form):
    """Check a portal account's username and password."""

    username = forms.CharField(max_length=100)
    password = forms.CharField(max_length=200, widget=forms.PasswordInput)

    def __init__(self, *args: Any, portal: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.portal = portal
        self.account: PortalAccount | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        username, password = data.get("username"), data.get("password")
        if username and password:
            account = PortalAccount.objects.filter(
                portal=self.portal, username=username, is_active=True
            ).first()
            if account is None or not account.check_password(password):
                raise forms.ValidationError("Invalid username or password.", code="invalid_login")
            self.account = account
        return data


def _external_ref_field() -> forms.CharField:
    return forms.CharField(
        max_length=200, required=False, label="External reference", help_text=REF_HELP
    )


def _clean_ref(model: type, value: str) -> str:
    value = value.strip()
    if value and model.objects.filter(external_ref=value).exists():
        raise forms.ValidationError("A record with this external reference already exists.")
    return value


class EmployeeForm(forms.Form):
    """HR: a new employee."""

    name = forms.CharField(max_length=200, label="Full name")
    department = forms.ChoiceField(choices=Department.choices)
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    manager = forms.CharField(max_length=200, required=False)
    external_ref = _external_ref_field()

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if len(name) < 2:
            raise forms.ValidationError("Enter the employee's full name.")
        return name

    def clean_external_ref(self) -> str:
        return _clean_ref(Employee, self.cleaned_data["external_ref"])


class ITAccountForm(forms.Form):
    """IT: an account for an HR employee id."""

    employee_id = forms.CharField(max_length=20, label="HR employee id")
    external_ref = _external_ref_field()

    def clean_employee_id(self) -> Employee:
        value = self.cleaned_data["employee_id"].strip().upper()
        employee = Employee.objects.filter(employee_id=value).first()
        if employee is None:
            raise forms.ValidationError(f"No HR employee has the id {value}.")
        existing = ITAccount.objects.filter(employee=employee).first()
        if existing is not None:
            raise forms.ValidationError(f"{value} already has an account: {existing.email}.")
        return employee

    def clean_external_ref(self) -> str:
        return _clean_ref(ITAccount, self.cleaned_data["external_ref"])


def available_models() -> list[str]:
    """Return the names of the laptops that can be ordered, sorted."""
    return list(LaptopModel.objects.filter(available=True).values_list("name", flat=True))


class OrderForm(forms.Form):
    """Procurement: a laptop for an IT account's email."""

    email = forms.EmailField(label="Employee email")
    laptop_model = forms.CharField(max_length=100, required=False, label="Laptop model")
    external_ref = _external_ref_field()

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if not ITAccount.objects.filter(email=email).exists():
            raise forms.ValidationError(f"No IT account has the email {email}.")
        return email

    def clean_laptop_model(self) -> LaptopModel:
        value = self.cleaned_data["laptop_model"].strip()
        models = available_models()
        listing = ", ".join(models) if models else "none"
        if not value:
            raise forms.ValidationError(
                f"Choose a laptop model. Available models: {listing}.", code="required"
            )
        laptop = LaptopModel.objects.filter(name__iexact=value, available=True).first()
        if laptop is None:
            raise forms.ValidationError(
                f"Unknown laptop model {value!r}. Available models: {listing}.",
                code="unknown_model",
            )
        return laptop

    def clean_external_ref(self) -> str:
        return _clean_ref(HardwareOrder, self.cleaned_data["external_ref"])
