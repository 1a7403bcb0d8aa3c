"""Writes of the mock portals: each record created in one transaction."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date

from django.db import transaction

from portals.models import Employee, HardwareOrder, ITAccount, LaptopModel

EMAIL_DOMAIN = "corp.example"


def _placeholder() -> str:
    # The real id derives from the primary key, known only after the insert.
    return "tmp-" + uuid.uuid4().hex[:16]


def employee_create(
    *,
    name: str,
    department: str,
    start_date: date,
    manager: str,
    external_ref: str | None,
    created_by: str,
) -> Employee:
    """Create an employee and give it its ``EMP-nnnnn`` id."""
    with transaction.atomic():
        employee = Employee.objects.create(
            employee_id=_placeholder(),
            name=name,
            department=department,
            start_date=start_date,
            manager=manager,
            external_ref=external_ref or None,
            created_by=created_by,
        )
        employee.employee_id = f"EMP-{employee.pk:05d}"
        employee.save(update_fields=["employee_id"])
    return employee


def email_local_part(name: str) -> str:
    """Return ``first.last`` in plain ASCII for a person's name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_name.lower())
    return ".".join(words) or "user"


def unique_email(name: str) -> str:
    """Return ``first.last@corp.example``, numbered when already taken."""
    local = email_local_part(name)
    email = f"{local}@{EMAIL_DOMAIN}"
    number = 1
    while ITAccount.objects.filter(email=email).exists():
        number += 1
        email = f"{local}{number}@{EMAIL_DOMAIN}"
    return email


def it_account_create(
    *, employee: Employee, external_ref: str | None, created_by: str
) -> ITAccount:
    """Create the employee's account with a generated unique email."""
    with transaction.atomic():
        return ITAccount.objects.create(
            employee=employee,
            email=unique_email(employee.name),
            external_ref=external_ref or None,
            created_by=created_by,
        )


def order_create(
    *, email: str, laptop: LaptopModel, external_ref: str | None, created_by: str
) -> HardwareOrder:
    """Place an order and give it its ``PO-nnnnn`` id."""
    with transaction.atomic():
        order = HardwareOrder.objects.create(
            order_id=_placeholder(),
            email=email,
            laptop=laptop,
            external_ref=external_ref or None,
            created_by=created_by,
        )
        order.order_id = f"PO-{order.pk:05d}"
        order.save(update_fields=["order_id"])
    return order
