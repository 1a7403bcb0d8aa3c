"""Demo data for the portals: accounts for the browser actions and a catalog."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from portals.models import LaptopModel, Portal, PortalAccount

CATALOG = [
    ("ThinkPad X1 Carbon", "14-inch, 32 GB, for most staff", 1890),
    ("MacBook Pro 14", "M-series, 36 GB, for engineering", 2490),
    ("Dell Latitude 7450", "14-inch, 16 GB, for sales and finance", 1450),
]


def ensure_demo_data(secrets: Mapping[str, str]) -> list[str]:
    """Create or update each portal's account from ``<PORTAL>_PORTAL_USER`` /
    ``_PASSWORD`` secrets and the laptop catalog; return the accounts' portals.

    Idempotent: running it again resets the passwords to the secrets and
    leaves catalog entries an operator edited alone.
    """
    made = []
    with transaction.atomic():
        for portal in Portal:
            prefix = portal.value.upper()
            user = secrets.get(f"{prefix}_PORTAL_USER")
            password = secrets.get(f"{prefix}_PORTAL_PASSWORD")
            if not user or not password:
                continue
            account, _ = PortalAccount.objects.get_or_create(portal=portal, username=user)
            account.set_password(password)
            account.is_active = True
            account.save()
            made.append(portal.value)
        for name, description, price in CATALOG:
            LaptopModel.objects.get_or_create(
                name=name, defaults={"description": description, "price_eur": price}
            )
    return made
