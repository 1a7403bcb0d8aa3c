"""The mock enterprise suite's own data: accounts, employees, IT accounts, orders.

These tables stand in for three external systems. Nothing else in AgentOS
reads them; the browser actions reach them only through the portals' HTML.
Each created record keeps the caller's external reference (the step's
idempotency key), unique per table, so a retried step finds its record.
"""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import models


class PortalPasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with fewer rounds than AgentOS's own users get.

    These are a mock suite's logins, entered by a browser on every action;
    Django's default (over a million rounds) would cost ~0.4 s per login.
    """

    algorithm = "pbkdf2_sha256_portal"
    iterations = 20_000


_HASHER = PortalPasswordHasher()


class Portal(models.TextChoices):
    HR = "hr", "HR"
    IT = "it", "IT"
    PROCUREMENT = "procurement", "Procurement"


class PortalAccount(models.Model):
    """A login to one portal; not an AgentOS user."""

    portal = models.CharField(max_length=20, choices=Portal.choices)
    username = models.CharField(max_length=100)
    password = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["portal", "username"], name="portal_account_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.portal})"

    def set_password(self, raw: str) -> None:
        self.password = _HASHER.encode(raw, _HASHER.salt())

    def check_password(self, raw: str) -> bool:
        if not self.password.startswith(f"{_HASHER.algorithm}$"):
            return False
        return _HASHER.verify(raw, self.password)


class Department(models.TextChoices):
    ENGINEERING = "Engineering"
    SALES = "Sales"
    FINANCE = "Finance"
    PEOPLE = "People"


class Employee(models.Model):
    """An HR record; ``employee_id`` is what other portals refer to."""

    employee_id = models.CharField(max_length=20, unique=True, editable=False)
    name = models.CharField(max_length=200)
    department = models.CharField(max_length=50, choices=Department.choices)
    start_date = models.DateField()
    manager = models.CharField(max_length=200, blank=True)
    external_ref = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_by = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.employee_id} {self.name}"


class ITAccount(models.Model):
    """A mailbox and login created by IT for an HR employee."""

    employee = models.OneToOneField(Employee, on_delete=models.PROTECT, related_name="it_account")
    email = models.EmailField(unique=True)
    external_ref = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_by = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "IT account"

    def __str__(self) -> str:
        return self.email


class LaptopModel(models.Model):
    """A catalog entry procurement can order."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    price_eur = models.PositiveIntegerField(default=0)
    available = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HardwareOrder(models.Model):
    """A laptop ordered for an IT account's email."""

    order_id = models.CharField(max_length=20, unique=True, editable=False)
    email = models.EmailField()
    laptop = models.ForeignKey(LaptopModel, on_delete=models.PROTECT, related_name="orders")
    external_ref = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_by = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.laptop} for {self.email}"
