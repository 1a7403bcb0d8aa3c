"""The admin's home page: shortcuts by role."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.support import client_for

pytestmark = pytest.mark.django_db


def test_the_home_page_offers_shortcuts_by_role(operator, auditor) -> None:
    operator_page = client_for(operator).get(reverse("admin:index")).content.decode()
    assert "Runs waiting for a person" in operator_page
    assert "Start a run of a workflow" in operator_page

    auditor_page = client_for(auditor).get(reverse("admin:index")).content.decode()
    assert "The event log" in auditor_page
    assert "Start a run of a workflow" not in auditor_page
