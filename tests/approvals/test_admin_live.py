"""The admin's run pages carry the live status script and its markers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.support import client_for

pytestmark = pytest.mark.django_db


def test_the_run_change_page_watches_its_run_from_its_last_seq(gated_run, auditor) -> None:
    run = gated_run()
    body = (
        client_for(auditor)
        .get(reverse("admin:workflows_run_change", args=[run.pk]))
        .content.decode()
    )
    assert "approvals/live.js" in body
    assert f'root.dataset.runLive = "{run.pk}"' in body
    assert f'root.dataset.seq = "{run.last_seq}"' in body
    assert 'id="run-events-table"' in body


def test_the_run_change_list_watches_every_run(gated_run, auditor) -> None:
    gated_run()
    body = client_for(auditor).get(reverse("admin:workflows_run_changelist")).content.decode()
    assert "approvals/live.js" in body and "AgentOSLive.watchAdminRunList()" in body
