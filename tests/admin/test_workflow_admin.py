"""Workflows in the admin: the spec as YAML or JSON, saved only through the services."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.admin.support import GATE_SPEC, client_for
from workflows.models import Event, Run, Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:workflows_workflow_add")


def change_url(workflow: Workflow) -> str:
    return reverse("admin:workflows_workflow_change", args=[workflow.pk])


def start_url(workflow: Workflow) -> str:
    return reverse("admin:workflows_workflow_start", args=[workflow.pk])


def test_an_operator_creates_a_workflow_from_yaml(operator) -> None:
    response = client_for(operator).post(ADD_URL, {"source": GATE_SPEC})

    assert response.status_code == 302, response.content.decode()[:2000]
    workflow = Workflow.objects.get(slug="gated")
    assert workflow.source == GATE_SPEC
    assert workflow.version == 1 and workflow.created_by == operator
    assert workflow.plan["nodes"][0]["id"] == "gate"
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1
    assert Event.objects.filter(run=None, type="workflow.created").count() == 1


def test_an_operator_creates_a_workflow_from_json(operator) -> None:
    spec = {
        "slug": "json-one",
        "title": "From JSON",
        "plan": {
            "nodes": [
                {
                    "id": "check",
                    "action": "verify.value_equals",
                    "params": {"value": "a", "expected": "a"},
                }
            ]
        },
    }
    text = json.dumps(spec, indent=2)

    response = client_for(operator).post(ADD_URL, {"source": text})

    assert response.status_code == 302
    workflow = Workflow.objects.get(slug="json-one")
    assert workflow.source == text and workflow.plan["nodes"][0]["action"] == "verify.value_equals"


def test_the_add_form_starts_with_an_example_spec(operator) -> None:
    response = client_for(operator).get(ADD_URL)
    assert response.status_code == 200
    assert "slug: my-workflow" in response.content.decode()


def test_problems_are_shown_inline_as_node_field_message(operator) -> None:
    text = """\
slug: broken
title: Broken
plan:
  nodes:
    - id: first
      action: nope.missing
    - id: second
      action: verify.value_equals
      params: {value: "{{ nowhere }}", expected: x}
"""
    response = client_for(operator).post(ADD_URL, {"source": text})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["source"]
    assert any(e.startswith("first.action: unknown action 'nope.missing'") for e in errors)
    assert any(e.startswith("second.params.value: refers to {{ nowhere }}") for e in errors)
    assert "first.action: unknown action" in response.content.decode()
    assert not Workflow.objects.filter(slug="broken").exists()
    assert not Event.objects.filter(type="workflow.created").exists()


def test_text_that_is_not_yaml_is_an_inline_error(operator) -> None:
    response = client_for(operator).post(ADD_URL, {"source": "slug: [unclosed"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["source"]
    assert errors[0].startswith("spec: not valid YAML or JSON")


def test_a_changed_spec_is_a_new_version(operator, gated_workflow) -> None:
    changed = GATE_SPEC.replace("title: Gated workflow", "title: Gated, again")

    response = client_for(operator).post(change_url(gated_workflow), {"source": changed})

    assert response.status_code == 302
    gated_workflow.refresh_from_db()
    assert gated_workflow.version == 2 and gated_workflow.title == "Gated, again"
    assert gated_workflow.source == changed
    assert list(gated_workflow.versions.values_list("version", flat=True)) == [2, 1]
    assert Event.objects.filter(type="workflow.updated").count() == 1


def test_a_change_cannot_rename_the_slug(operator, gated_workflow) -> None:
    response = client_for(operator).post(
        change_url(gated_workflow), {"source": GATE_SPEC.replace("slug: gated", "slug: other")}
    )
    assert response.status_code == 200
    assert (
        "slug: the slug of a workflow cannot change"
        in (response.context["adminform"].form.errors["source"])
    )
    gated_workflow.refresh_from_db()
    assert gated_workflow.version == 1


def test_the_change_page_shows_plan_and_versions(auditor, gated_workflow) -> None:
    response = client_for(auditor).get(change_url(gated_workflow))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<code>gate</code>" in page and "OK for {{ employee_name }}?" in page
    assert "v1 (current)" in page
    assert 'name="source"' not in page  # read-only for an auditor
    assert "Start a run" not in page


def test_an_auditor_cannot_add_or_change_a_workflow(auditor, gated_workflow) -> None:
    client = client_for(auditor)
    assert client.post(ADD_URL, {"source": GATE_SPEC.replace("gated", "new")}).status_code == 403
    changed = GATE_SPEC.replace("title: Gated workflow", "title: Sneaky")
    assert client.post(change_url(gated_workflow), {"source": changed}).status_code == 403
    gated_workflow.refresh_from_db()
    assert gated_workflow.version == 1


def test_nobody_deletes_a_workflow_in_the_admin(superuser, gated_workflow) -> None:
    url = reverse("admin:workflows_workflow_delete", args=[gated_workflow.pk])
    assert client_for(superuser).post(url, {"post": "yes"}).status_code == 403
    assert Workflow.objects.filter(pk=gated_workflow.pk).exists()


def test_the_start_view_queues_a_run(operator, gated_workflow) -> None:
    client = client_for(operator)
    page = client.get(start_url(gated_workflow))
    assert page.status_code == 200
    assert 'name="employee_name"' in page.content.decode()

    response = client.post(
        start_url(gated_workflow),
        {"employee_name": "Grace Hopper", "count": "10", "run-mode": "interactive"},
    )

    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:workflows_run_change", args=[run.pk])
    assert run.status == "queued" and run.mode == "interactive"
    assert run.context == {"employee_name": "Grace Hopper", "count": 10}
    assert run.requester == operator and run.workflow_version == 1


def test_the_start_view_shows_errors_beside_the_fields(operator, gated_workflow) -> None:
    client = client_for(operator)
    missing = client.post(start_url(gated_workflow), {"run-mode": "assisted"})
    assert missing.status_code == 200
    assert "This field is required." in missing.content.decode()

    # The form knows nothing of multipleOf; the service's schema check does.
    response = client.post(
        start_url(gated_workflow), {"employee_name": "Ada", "count": "7", "run-mode": "assisted"}
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "7 is not a multiple of 5" in page
    assert 'class="form-row errors field-count"' in page
    assert not Run.objects.exists()


@pytest.mark.parametrize("who", ["reviewer", "auditor"])
def test_starting_a_run_needs_the_start_permission(request, who, gated_workflow) -> None:
    client = client_for(request.getfixturevalue(who))
    assert client.get(start_url(gated_workflow)).status_code == 403
    response = client.post(
        start_url(gated_workflow), {"employee_name": "Ada", "run-mode": "assisted"}
    )
    assert response.status_code == 403
    assert not Run.objects.exists()


def test_the_list_action_leads_to_the_start_view(operator, gated_workflow) -> None:
    response = client_for(operator).post(
        reverse("admin:workflows_workflow_changelist"),
        {"action": "start_run_action", "_selected_action": [gated_workflow.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == start_url(gated_workflow)
