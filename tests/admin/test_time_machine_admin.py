"""The admin's time machine, lineage and batch upload."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api.conftest import PEOPLE_SPEC
from workflows.engine import run_advance
from workflows.models import Run
from workflows.services import run_create, workflow_create

pytestmark = pytest.mark.django_db


def test_state_at_an_event_is_replayed_and_a_fork_is_linked_both_ways(operator, client) -> None:
    workflow = workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)
    run = run_create(workflow=workflow, context={"name": "Ada"}, requester=operator)
    run_advance(run_id=run.pk)
    client.force_login(operator)

    page = client.get(f"/admin/workflows/run/{run.pk}/state/3/").content.decode()
    assert 'id="state-status">waiting<' in page and "gate (position 0)" in page
    assert "Ada" in page

    response = client.post(
        f"/admin/workflows/run/{run.pk}/fork/", {"at_seq": "1", "context": '{"name": "Bob"}'}
    )
    child = Run.objects.get(parent=run)
    assert response.status_code == 302 and response["Location"].endswith(
        f"/workflows/run/{child.pk}/change/"
    )
    assert child.context == {"name": "Bob"}
    parent_page = client.get(f"/admin/workflows/run/{run.pk}/change/").content.decode()
    child_page = client.get(f"/admin/workflows/run/{child.pk}/change/").content.decode()
    assert f"/admin/workflows/run/{child.pk}/change/" in parent_page
    assert f"/admin/workflows/run/{run.pk}/change/" in child_page


def test_a_csv_upload_shows_errors_by_row_and_starts_nothing(operator, client) -> None:
    workflow = workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)
    client.force_login(operator)
    url = f"/admin/workflows/workflow/{workflow.pk}/batch/"

    bad = client.post(
        url,
        {
            "csv_file": SimpleUploadedFile(
                "people.csv", b"name,age\nAda,1\n,zz\n", content_type="text/csv"
            )
        },
    )
    page = bad.content.decode()
    assert bad.status_code == 200 and 'id="batch-errors"' in page
    assert "<td>2</td><td><code>age</code></td>" in page
    assert not Run.objects.exists()

    good = client.post(
        url,
        {
            "csv_file": SimpleUploadedFile(
                "people.csv", b"name,age\nAda,1\nBob,2\n", content_type="text/csv"
            )
        },
    )
    assert good.status_code == 302 and Run.objects.count() == 2
