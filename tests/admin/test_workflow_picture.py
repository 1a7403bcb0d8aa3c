"""The plan's picture: drawn recursively, with problems on their boxes, and
the workflow editor's endpoint that validates a spec without saving it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.support import GATE_SPEC, client_for
from workflows.models import Workflow
from workflows.picture import guarded_ids, render_graph

URL = "/admin/workflows/workflow/picture/"

GRAPH_SPEC = """\
slug: routed
title: Routed
inputs:
  type: object
  required: [amount]
  properties:
    amount: {type: number}
plan:
  nodes:
    - id: route
      type: branch
      cases: [{when: "amount > 5000", next: finance}]
      default: manager
    - id: manager
      type: approval
      title: Manager OK?
      on_reject: rejected
      next: end
    - id: finance
      type: approval
      title: Finance OK?
      on_reject: rejected
      next: end
    - id: rejected
      type: fail
      message: rejected
"""


def test_a_block_inside_a_block_is_drawn_with_paths_like_validation_names_them() -> None:
    # Validation refuses this today (graph3 lifts it); the drawing copes already.
    plan = {
        "nodes": [
            {
                "id": "hires",
                "type": "map",
                "items": "{{ hires }}",
                "as": "hire",
                "nodes": [
                    {
                        "id": "setup",
                        "type": "parallel",
                        "branches": [
                            {"nodes": [{"id": "hr", "action": "hr.create_employee"}]},
                            {"nodes": [{"id": "it", "action": "it.create_account"}]},
                        ],
                    },
                    {"id": "laptop", "action": "procurement.order_laptop"},
                ],
            }
        ]
    }
    errors = {"hires/setup/1/it": ["action: unknown action"], "elsewhere": ["x"]}
    html = str(render_graph(plan, {"hr": "done", "it": "running"}, errors=errors))
    assert 'data-path="hires/setup/0/hr"' in html
    assert 'data-path="hires/laptop"' in html
    it_box = html[html.index('data-path="hires/setup/1/it"') :]
    assert it_box.index("action: unknown action") < it_box.index("</li>")
    assert 'class="agentos-node kind-action state-running has-error"' in html
    assert "state-done" in html
    assert errors == {"elsewhere": ["x"]}  # what no box shows is left for the caller


def test_the_request_node_is_outlined_and_its_guarded_actions_marked() -> None:
    plan = {
        "nodes": [
            {"id": "gate", "type": "approval", "title": "OK?"},
            {"id": "write", "action": "files.write"},
            {"id": "other", "action": "files.write"},
        ]
    }
    guarded = guarded_ids([{"node": "write"}, {"node": "orders[1]/ship"}])
    assert guarded == {"write", "ship"}
    html = str(render_graph(plan, {"gate": "waiting"}, highlight="gate", guarded=guarded))
    assert (
        '<li class="agentos-node kind-approval state-waiting is-here" data-node="gate" '
        'data-path="gate" aria-current="step">'
    ) in html
    assert html.count("is-here") == 1 and html.count("aria-current") == 1
    write = html[html.index('data-node="write"') :]
    assert write.index("runs as approved here") < write.index("</li>")
    assert html.count("runs as approved here") == 1
    assert html.count("this request") == 1


@pytest.mark.django_db
def test_the_editor_endpoint_draws_a_valid_spec_and_saves_nothing(operator) -> None:
    client = client_for(operator)
    answer = client.post(URL, {"source": GRAPH_SPEC})
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    body = answer.json()
    assert body["valid"] is True and body["errors"] == []
    assert 'data-path="route"' in body["picture"] and "amount &gt; 5000" in body["picture"]
    assert not Workflow.objects.filter(slug="routed").exists()


@pytest.mark.django_db
def test_the_editor_endpoint_puts_each_problem_on_its_box_or_lists_it(operator) -> None:
    spec = GRAPH_SPEC.replace("default: manager", "default: nowhere").replace(
        "slug: routed", "slug: Not A Slug"
    )
    body = client_for(operator).post(URL, {"source": spec}).json()
    assert body["valid"] is False
    by_field = {(e["node"], e["field"]): e for e in body["errors"]}
    assert by_field[("route", "default")]["on_box"] is True
    assert by_field[("", "slug")]["on_box"] is False
    assert 'class="agentos-node kind-branch state-pending has-error"' in body["picture"]
    assert set(by_field) == {("", "slug"), ("route", "default")}
    assert "nowhere" in body["picture"]  # the message is on the box


@pytest.mark.django_db
def test_the_editor_endpoint_answers_a_broken_spec_with_its_line(operator) -> None:
    body = client_for(operator).post(URL, {"source": "plan: [unclosed"}).json()
    assert body["valid"] is False
    [error] = body["errors"]
    assert error["field"] == "spec" and "line" in error["message"] and not error["on_box"]
    assert "No nodes." in body["picture"]


@pytest.mark.django_db
def test_the_editor_endpoint_checks_the_slug_against_the_workflow_edited(
    operator, gated_workflow
) -> None:
    client = client_for(operator)
    same = client.post(URL, {"source": GATE_SPEC, "workflow": gated_workflow.pk}).json()
    assert same["valid"] is True
    # The same spec on the add page would clash with the stored one.
    clash = client.post(URL, {"source": GATE_SPEC}).json()
    assert [(e["field"], e["message"]) for e in clash["errors"]] == [
        ("slug", "a workflow 'gated' already exists")
    ]
    renamed = client.post(
        URL,
        {"source": GATE_SPEC.replace("slug: gated", "slug: other"), "workflow": gated_workflow.pk},
    ).json()
    assert renamed["errors"][0]["message"] == "the slug of a workflow cannot change"


@pytest.mark.django_db
def test_the_editor_endpoint_refuses_bad_input_with_the_field_named(
    operator, gated_workflow
) -> None:
    client = client_for(operator)
    missing = client.post(URL, {})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "source"
    bad_id = client.post(URL, {"source": GATE_SPEC, "workflow": "x"})
    assert bad_id.status_code == 400 and bad_id.json()["errors"][0]["field"] == "workflow"
    assert client.post(URL, {"source": GATE_SPEC, "workflow": 999999}).status_code == 404
    assert client.get(URL).status_code == 405


@pytest.mark.django_db
def test_only_those_who_may_add_or_change_workflows_may_ask(
    reviewer, auditor, gated_workflow
) -> None:
    for user in (reviewer, auditor):
        client = client_for(user)
        assert client.post(URL, {"source": GATE_SPEC}).status_code == 403
        answer = client.post(URL, {"source": GATE_SPEC, "workflow": gated_workflow.pk})
        assert answer.status_code == 403
    from django.test import Client

    anonymous = Client().post(URL, {"source": GATE_SPEC})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


@pytest.mark.django_db
def test_a_child_workflow_node_links_to_the_stored_workflow(operator, gated_workflow) -> None:
    spec = """\
slug: parent
title: Parent
plan:
  nodes:
    - id: child
      type: workflow
      workflow: gated
      inputs: {employee_name: Ada}
"""
    body = client_for(operator).post(URL, {"source": spec}).json()
    assert body["valid"], body["errors"]
    link = reverse("admin:workflows_workflow_change", args=[gated_workflow.pk])
    assert f'<a href="{link}">gated</a>' in body["picture"]
    page = client_for(operator).get(link)
    assert page.status_code == 200
    assert b'id="spec-picture"' in page.content and b'data-path="gate"' in page.content


@pytest.mark.django_db
def test_the_parent_run_page_draws_its_child_node_as_a_link_to_the_child_run(
    tmp_path, operator, superuser
) -> None:
    from tests.support.children import child_run, gated_child_spec, parent_spec
    from tests.support.runs import advance
    from workflows.services import run_create, workflow_create

    workflow_create(raw_spec=gated_child_spec("kid", tmp_path / "l"), actor=operator)
    boss_flow = workflow_create(raw_spec=parent_spec("boss", "kid"), actor=operator)
    parent = advance(run_create(workflow=boss_flow, context={"name": "ann"}, requester=operator))
    child = child_run(parent)
    html = client_for(superuser).get(f"/admin/workflows/run/{parent.pk}/change/").content.decode()
    box = html[html.index('data-path="sub"') :]
    box = box[: box.index("</li>")]
    assert f'<a href="/admin/workflows/run/{child.pk}/change/">kid' in box
