"""Inputs are checked against the policy (roots, hosts) before a run exists.

A folder outside the file roots typed into a start form used to be accepted
and fail when its step ran; now the start form shows the error beside the
field and `POST /api/v1/runs` answers 400 naming `context.<input>`.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from tests.admin.support import client_for
from tests.api.conftest import api_for
from workflows import executor_config
from workflows.context_policy import context_policy_errors
from workflows.models import Run, Workflow
from workflows.plans import PlanInvalid, parse_spec_text
from workflows.services import run_create, workflow_create

pytestmark = pytest.mark.django_db

FOLDER_SPEC = """\
slug: tidy
title: Tidy a folder
mode: autonomous
inputs:
  type: object
  required: [folder]
  properties:
    folder: {type: string, title: Folder}
plan:
  nodes:
    - id: look
      action: files.list
      params: {path: "{{ folder }}"}
      outputs: {found: files}
    - id: later
      action: files.list
      params: {path: "{{ found }}"}
"""


@pytest.fixture
def tidy(operator) -> Workflow:  # type: ignore[no-untyped-def]
    return workflow_create(raw_spec=parse_spec_text(FOLDER_SPEC), actor=operator)


def errors_of(plan: dict, context: dict) -> list[tuple[str, str, str]]:
    found = context_policy_errors(
        plan, context, registry=executor_config.registry(), policy=executor_config.policy()
    )
    return [(e.node, e.field, e.message) for e in found]


def test_a_folder_outside_the_roots_is_named_by_its_input(tidy) -> None:
    plan = tidy.plan
    assert errors_of(plan, {"folder": "inbox"}) == []
    [(node, field, message)] = errors_of(plan, {"folder": "/etc"})
    assert (node, field) == ("", "context.folder")
    assert "outside the allowed file roots" in message and "used by step look" in message
    # `found` is produced by the run later: the child checks it, not the start.
    assert errors_of(plan, {"folder": "inbox", "found": None}) == []


def test_nested_blocks_and_hosts_are_checked_too() -> None:
    plan = {
        "nodes": [
            {
                "id": "setup",
                "type": "parallel",
                "branches": [
                    {
                        "nodes": [
                            {
                                "id": "call",
                                "action": "api.request",
                                "params": {"url": "{{ base }}/health"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    [(node, field, message)] = errors_of(plan, {"base": "http://evil.example"})
    assert (node, field) == ("", "context.base") and "evil.example" in message
    assert errors_of(plan, {"base": "http://127.0.0.1:8000"}) == []


def test_the_start_form_shows_the_policy_error_beside_the_field(operator, tidy) -> None:
    url = reverse("admin:workflows_workflow_start", args=[tidy.pk])
    response = client_for(operator).post(url, {"folder": "/etc", "run-mode": "autonomous"})
    page = response.content.decode()
    assert 'class="form-row errors field-folder"' in page
    assert "outside the allowed file roots" in page
    assert not Run.objects.exists()


def test_post_runs_refuses_it_by_field_and_nothing_starts(operator, tidy) -> None:
    response = api_for(operator).post("/runs", {"workflow": "tidy", "context": {"folder": "/"}})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["context.folder"]
    assert not Run.objects.exists()
    ok = api_for(operator).post("/runs", {"workflow": "tidy", "context": {"folder": "inbox"}})
    assert ok.status_code == 201, ok.json()


def test_a_bare_plan_with_a_context_path_outside_the_roots_is_refused(operator) -> None:
    plan = {"nodes": [{"id": "look", "action": "files.list", "params": {"path": "{{ where }}"}}]}
    with pytest.raises(PlanInvalid) as caught:
        run_create(plan=plan, context={"where": "/root"}, requester=operator)
    assert [e.field for e in caught.value.errors] == ["context.where"]
    inside = str(settings.AGENTOS_FILES_ROOTS[0])
    assert run_create(plan=plan, context={"where": inside}, requester=operator).pk
