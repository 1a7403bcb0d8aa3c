"""A NUL character is refused where it enters, by name, on every backend.

PostgreSQL stores neither NUL in text nor \\u0000 in jsonb; without these
checks the same request was a 400 on SQLite and a 500 on PostgreSQL.
"""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from approvals.services import DecisionInvalid, approval_decide
from tests.api.conftest import PEOPLE_SPEC
from workflows.batches import BatchInvalid, rows_from_csv, runs_start_batch
from workflows.engine import run_advance
from workflows.models import Event, Run, Workflow
from workflows.plans import PlanInvalid
from workflows.services import run_create, workflow_create

pytestmark = pytest.mark.django_db

NUL = "\x00"


def fields(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workflow": f"peo{NUL}ple"}, "workflow"),
        ({"workflow": "people", "context": {"name": f"A{NUL}"}}, "context.name"),
        ({"workflow": "people", "context": {f"na{NUL}me": "A"}}, "context.na\\x00me"),
        (
            {
                "plan": {
                    "nodes": [
                        {
                            "id": "v",
                            "action": "verify.value_equals",
                            "params": {"value": NUL, "expected": "x"},
                        }
                    ]
                }
            },
            "plan.nodes.0.params.value",
        ),
    ],
)
def test_a_nul_in_a_json_body_is_a_422_naming_the_field(as_operator, people, body, field) -> None:
    response = as_operator.post("/runs", body)

    assert response.status_code == 422, response.content
    assert fields(response) == [field]
    assert "NUL" in response.json()["errors"][0]["message"]
    assert not Run.objects.exists() and not Event.objects.filter(run__isnull=False).exists()


def test_a_nul_in_a_query_parameter_path_or_header_is_a_400(as_operator, people) -> None:
    query = as_operator.get("/runs?workflow=a%00b")
    path = as_operator.get("/workflows/peo%00ple")
    header = as_operator.post(
        "/runs",
        {"workflow": "people", "context": {"name": "A"}},
        **{"Idempotency-Key": f"k{NUL}1"},
    )

    assert (query.status_code, fields(query)) == (400, ["query.workflow"])
    assert (path.status_code, fields(path)) == (400, ["path"])
    assert (header.status_code, fields(header)) == (400, ["header.Idempotency-Key"])
    assert not Run.objects.exists()


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(as_operator, people) -> None:
    response = as_operator.post("/runs", {"workflow": "people", "context": {"name": "C:\\u0000"}})

    assert response.status_code == 201, response.json()
    assert Run.objects.get().context == {"name": "C:\\u0000"}


def test_admin_pages_answer_a_nul_with_a_400(client, superuser) -> None:
    client.force_login(superuser)

    response = client.get("/admin/workflows/run/?q=%00")

    assert response.status_code == 400
    assert b"query.q must not contain a NUL" in response.content


def test_services_refuse_a_nul_from_any_caller(operator, people) -> None:
    with pytest.raises(PlanInvalid) as context:
        run_create(workflow=people, context={"name": NUL}, requester=operator)
    assert [e.field for e in context.value.errors] == ["context.name"]

    with pytest.raises(PlanInvalid) as spec:
        workflow_create(
            raw_spec={**PEOPLE_SPEC, "slug": "people-2", "title": f"T{NUL}"}, actor=operator
        )
    assert [e.field for e in spec.value.errors] == ["title"]
    assert Workflow.objects.count() == 1


def test_a_csv_batch_with_a_nul_names_its_row_and_column(operator, people) -> None:
    rows = rows_from_csv(f"name,age\nAda,36\nGr{NUL}ace,40\n", people.inputs_schema)

    with pytest.raises(BatchInvalid) as batch:
        runs_start_batch(workflow=people, rows=rows, actor=operator, source="csv")

    assert [(e.row, e.column) for e in batch.value.errors] == [(2, "name")]
    assert not Run.objects.exists()


def test_a_decision_with_a_nul_is_refused_and_the_request_stays_pending(
    operator, reviewer, people
) -> None:
    run = run_create(workflow=people, context={"name": "Ada"}, requester=operator)
    run_advance(run_id=run.pk)
    request = ApprovalRequest.objects.get(run=run)

    with pytest.raises(DecisionInvalid) as refused:
        approval_decide(
            request_id=request.pk, actor=reviewer, decision="reject", comment=f"no{NUL}"
        )

    assert list(refused.value.errors) == ["comment"]
    request.refresh_from_db()
    assert request.status == "pending"
