"""Bad input that costs the server: alias bombs in YAML, JSON nested too deep.

Each door answers 4xx naming the problem, never a 500, and keeps nothing.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from agentos_common import limits
from tests.api.conftest import api_for
from workflows.models import Run, RunBatch, Workflow
from workflows.plans import PlanInvalid, parse_spec_text
from workflows.services import run_create, workflow_create

pytestmark = pytest.mark.django_db

# The 474-character spec: nine levels of nine aliases each, ~3.8e8
# strings when expanded (seconds and tens of MB before; more levels, hours).
LAUGHS = (
    "slug: lol\ntitle: laughs\nplan: {nodes: [{id: a, action: verify.value_equals, "
    "params: {value: *i, expected: 1}}]}\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{b}: &{b} [*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
)
DEEP = 900  # what gave a 500 (RecursionError in copy.deepcopy)

SHAPES_SPEC = {
    "slug": "shapes",
    "title": "Shapes",
    "mode": "autonomous",
    "inputs": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "shape": {"type": "array"}},
    },
    "plan": {
        "nodes": [
            {
                "id": "check",
                "action": "verify.value_equals",
                "params": {"value": "{{ name }}", "expected": "{{ name }}"},
            }
        ]
    },
}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def raw_post(client: Client, token: str, path: str, text: str, method: str = "post") -> Any:
    return getattr(client, method)(
        f"/api/v1{path}",
        data=text,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def fields(response: Any) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in response.json()["errors"]]


def test_an_alias_bomb_spec_is_refused_naming_aliases(operator) -> None:
    api = api_for(operator)
    assert len(LAUGHS) < 600
    response = api.post("/workflows", {"source": LAUGHS})
    assert response.status_code == 400
    [(field, message)] = fields(response)
    assert field == "spec" and message.startswith("aliases (*name) are not allowed")
    assert "(line 3, column " in message
    assert not Workflow.objects.filter(slug="lol").exists()


def test_yaml_anchors_aliases_and_deep_nesting_are_refused() -> None:
    with pytest.raises(PlanInvalid) as caught:
        parse_spec_text("a: *nowhere\n")
    assert caught.value.errors[0].message.startswith("aliases (*name) are not allowed")
    with pytest.raises(PlanInvalid) as caught:
        parse_spec_text("base: &b {x: 1}\nother: {<<: *b}\n")
    assert caught.value.errors[0].message.startswith("anchors (&name) are not allowed")
    for deep in (
        nested(limits.MAX_DEPTH + 1),
        nested(20000),
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
    ):
        with pytest.raises(PlanInvalid) as caught:
            parse_spec_text(deep)
        assert caught.value.errors[0].field == "spec"
        assert "nested deeper than 32 levels" in caught.value.errors[0].message
    assert parse_spec_text(nested(limits.MAX_DEPTH)) is not None  # the bound itself is fine
    assert parse_spec_text("a: [1, {b: 'x &y *z'}]") == {"a": [1, {"b": "x &y *z"}]}


def test_the_admin_spec_form_refuses_an_alias_bomb(superuser) -> None:
    client = Client()
    client.force_login(superuser)
    response = client.post("/admin/workflows/workflow/add/", {"source": LAUGHS})
    assert response.status_code == 200  # the form again, with its error
    assert b"aliases (*name) are not allowed" in response.content
    assert not Workflow.objects.exists()


def test_the_start_run_command_refuses_an_alias_bomb(operator, tmp_path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("nodes: &n [*n]\n")
    with pytest.raises(CommandError, match="not allowed"):
        call_command("start_run", "--plan-file", str(path), "--as", operator.username)
    assert not Run.objects.exists()


def test_json_nested_900_levels_is_a_400_on_every_api_body(operator) -> None:
    token = api_for(operator).headers["Authorization"].removeprefix("Bearer ")
    workflow_create(raw_spec=SHAPES_SPEC, actor=operator)
    client = Client()
    bodies = {
        "/runs": f'{{"workflow": "shapes", "context": {{"shape": {nested(DEEP)}}}}}',
        "/workflows": f'{{"spec": {{"slug": "deep", "title": "t", "plan": {nested(DEEP)}}}}}',
        "/runs/batch": f'{{"workflow": "shapes", "rows": [{{"shape": {nested(DEEP)}}}]}}',
        "/plans/validate": f'{{"plan": {{"nodes": {nested(DEEP)}}}}}',
    }
    for path, text in bodies.items():
        response = raw_post(client, token, path, text)
        assert response.status_code == 400, (path, response.content[:200])
        assert fields(response) == [("body", "nested deeper than 32 levels")], path
    # Brackets inside strings are text, not nesting.
    response = raw_post(
        client,
        token,
        "/runs",
        '{"workflow": "shapes", "context": {"name": "%s", "shape": [[1]]}}' % ("[" * DEEP),
    )
    assert response.status_code == 201, response.content
    assert Run.objects.count() == 1 and not RunBatch.objects.exists()


def test_a_csv_cell_nested_too_deep_names_its_row_and_column(operator) -> None:
    api = api_for(operator)
    workflow_create(raw_spec=SHAPES_SPEC, actor=operator)
    out = io.StringIO()
    csv.writer(out).writerows([["name", "shape"], ["ok", "[[1]]"], ["bad", nested(DEEP)]])
    response = api.post("/runs/batch", {"workflow": "shapes", "csv": out.getvalue()})
    assert response.status_code == 400
    assert [(e["row"], e["field"], e["message"]) for e in response.json()["errors"]] == [
        (2, "shape", "nested deeper than 32 levels")
    ]
    assert not Run.objects.exists()


def test_contexts_nested_too_deep_are_refused_in_every_service(operator) -> None:
    workflow = workflow_create(raw_spec=SHAPES_SPEC, actor=operator)
    deep: Any = []
    for _ in range(DEEP):
        deep = [deep]
    with pytest.raises(PlanInvalid) as caught:
        run_create(workflow=workflow, context={"shape": deep}, requester=operator)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("context", "nested deeper than 32 levels")
    ]
    assert not Run.objects.exists()


def test_admin_json_forms_refuse_deep_json(superuser) -> None:
    workflow = workflow_create(raw_spec=SHAPES_SPEC, actor=superuser)
    client = Client()
    client.force_login(superuser)
    response = client.post(
        f"/admin/workflows/workflow/{workflow.pk}/batch/",
        {"rows_json": f'[{{"shape": {nested(DEEP)}}}]'},
        follow=True,
    )
    assert response.status_code == 200
    assert b"nested deeper than 32 levels" in response.content
    assert not Run.objects.exists()


def test_the_schedule_admin_refuses_deep_json_context(superuser) -> None:
    workflow = workflow_create(raw_spec=SHAPES_SPEC, actor=superuser)
    client = Client()
    client.force_login(superuser)
    for depth in (DEEP, 100_000):  # the second one exhausts json.loads itself
        response = client.post(
            "/admin/workflows/workflowschedule/add/",
            {
                "name": "deep",
                "workflow": workflow.pk,
                "kind": "interval",
                "minutes": 5,
                "context": f'{{"shape": {nested(depth)}}}',
                "mode": "",
                "enabled": "on",
                "owner": superuser.pk,
            },
        )
        assert response.status_code == 200
        assert b"nested deeper than 32 levels" in response.content
    assert not workflow.schedules.exists()
