"""seed_demo sets up the portals and the onboarding workflow, and can run again."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command

from portals.models import LaptopModel, PortalAccount
from workflows.models import Workflow
from workflows.services import run_create

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_with_portal_accounts_and_catalog(operator) -> None:
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    assert sorted(PortalAccount.objects.values_list("portal", "username")) == [
        ("hr", "hr-agent"),
        ("it", "it-agent"),
        ("procurement", "buyer-agent"),
    ]
    assert LaptopModel.objects.count() == 3
    onboarding = Workflow.objects.get(slug="employee-onboarding")
    assert onboarding.version == 1
    account = PortalAccount.objects.get(portal="hr")
    assert account.check_password(settings.AGENTOS_SECRETS["HR_PORTAL_PASSWORD"])
    assert settings.AGENTOS_SECRETS["HR_PORTAL_PASSWORD"] not in account.password

    # Inputs left out take their schema defaults, so procurement itself asks.
    run = run_create(
        workflow=onboarding,
        requester=operator,
        context={"employee_name": "Ada", "department": "Sales"},
    )
    assert run.context == {
        "employee_name": "Ada",
        "department": "Sales",
        "manager": "",
        "laptop_model": "",
    }
